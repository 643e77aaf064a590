"""Every string field a caller sends refuses control characters (C0, DEL, C1) and invalid Unicode
(lone surrogates), and accepts the rest of Unicode unchanged where the field allows it. Properties
checked with hypothesis; the round trip through SQLite and PostgreSQL is in
tests/integration/test_text_round_trip.py."""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Callable

import pytest
from grpcdemo.errors import InvalidInput
from grpcdemo.text import check_text
from hypothesis import given
from hypothesis import strategies as st
from orderd.domain.orders import OrderItem, parse_order_id, validate_items, validate_request_id
from orderd.domain.pagination import decode_cursor
from userd.domain.validation import normalize_email, normalize_name, validate_password

FORBIDDEN = [chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))] + ["\ud800", "\udfff"]
forbidden = st.sampled_from(FORBIDDEN)
allowed_text = st.text(st.characters(exclude_categories=("Cc", "Cs")))


@given(allowed_text, forbidden, allowed_text)
def test_any_control_character_or_lone_surrogate_is_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(InvalidInput, match="must not contain") as caught:
        check_text(before + bad + after, "field")
    # The message says where, never the value itself.
    assert bad not in str(caught.value)


@given(allowed_text)
def test_everything_else_passes_unchanged(value: str) -> None:
    assert check_text(value, "field") == value


def page_token(order_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"t": 1, "id": order_id}).encode()).decode()


VALIDATORS: dict[str, Callable[[str], object]] = {
    "email": lambda v: normalize_email(f"ann{v}@example.com"),
    "name": lambda v: normalize_name(f"Ann{v}"),
    "password": lambda v: validate_password(f"password{v}"),
    "request_id": lambda v: validate_request_id(f"r{v}"),
    "sku": lambda v: validate_items([OrderItem(f"BOOK{v}", 1, 100)]),
    "order_id": lambda v: parse_order_id(f"0b6c2a4e-8f2d-4e1c-9b7a-3d5e6f70819{v}"),
    "page_token": lambda v: decode_cursor(page_token(f"0b6c2a4e-8f2d-4e1c-9b7a-3d5e6f708192{v}")),
}


@pytest.mark.parametrize("field", sorted(VALIDATORS))
@given(bad=forbidden)
def test_every_field_refuses_them(field: str, bad: str) -> None:
    with pytest.raises(InvalidInput):
        VALIDATORS[field](bad)


@pytest.mark.parametrize(
    ("value", "field"),
    [("r1\n", "request_id"), ("A\n", "sku"), ("ann@example.com\n", "email")],
)
def test_a_trailing_newline_is_refused(value: str, field: str) -> None:
    """`$` in Python's re also matches before a trailing newline: patterns use fullmatch."""
    checks = {
        "request_id": lambda: validate_request_id(value),
        "sku": lambda: validate_items([OrderItem(value, 1, 1)]),
        "email": lambda: normalize_email(value),
    }
    with pytest.raises(InvalidInput):
        checks[field]()


@given(st.text(st.characters(categories=("Ll", "Lu", "Lo", "Mn")), min_size=1, max_size=40))
def test_one_address_in_any_unicode_form_is_one_email_and_normalising_is_stable(local: str) -> None:
    address = f"{local}@example.com"
    try:
        stored = normalize_email(unicodedata.normalize("NFC", address))
    except InvalidInput:
        return  # not an address at all (whitespace-like marks, too long)
    assert normalize_email(unicodedata.normalize("NFD", address)) == stored
    assert normalize_email(stored) == stored
    assert normalize_email(stored.upper()) == normalize_email(stored.upper().lower())


def test_nfc_and_nfd_of_an_address_are_the_same_account() -> None:
    nfc = unicodedata.normalize("NFC", "José@example.com")
    nfd = unicodedata.normalize("NFD", "José@example.com")
    assert nfc != nfd
    assert normalize_email(nfc) == normalize_email(nfd) == normalize_email(nfd.upper())
