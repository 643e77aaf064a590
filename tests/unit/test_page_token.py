"""Page tokens are caller input: every way decoding one can fail is INVALID_ARGUMENT, never INTERNAL."""

from __future__ import annotations

import base64
import json

import pytest
from grpcdemo.errors import InvalidInput
from orderd.domain.pagination import decode_cursor


def token_of(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="deeply-nested-array"),
        pytest.param('{"t":' + "[" * 100_000 + "]" * 100_000 + ',"id":"x"}', id="deeply-nested-field"),
        pytest.param('{"t":' + "9" * 5_000 + ',"id":"x"}', id="integer-too-long-to-parse"),
        pytest.param('{"t":' + str(10**30) + ',"id":"x"}', id="timestamp-out-of-range"),
        pytest.param('{"t":-1e400,"id":"x"}', id="float-timestamp"),
        pytest.param('["t","id"]', id="array-instead-of-object"),
        pytest.param('"t"', id="string-instead-of-object"),
    ],
)
def test_undecodable_page_tokens_are_invalid_input(payload: str) -> None:
    with pytest.raises(InvalidInput, match="page_token"):
        decode_cursor(token_of(payload))


def test_a_token_that_is_not_utf8_is_invalid_input() -> None:
    token = base64.urlsafe_b64encode(b"\xff\xfe\x00{").decode()
    with pytest.raises(InvalidInput, match="page_token"):
        decode_cursor(token)


def test_the_invalid_input_hides_the_decoding_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(token_of("[" * 100_000))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_well_formed_token_still_decodes() -> None:
    order_id = "0b6c2a4e-8f2d-4e1c-9b7a-3d5e6f708192"
    cursor = decode_cursor(token_of(json.dumps({"t": 1_767_268_800_123_456, "id": order_id})))
    assert cursor is not None
    assert (cursor.order_id, cursor.created_at.microsecond) == (order_id, 123_456)


@pytest.mark.parametrize("order_id", ["abc", "\u0000", "0b6c2a4e-8f2d-4e1c-9b7a-3d5e6f70819\u0000"])
def test_a_token_naming_no_order_id_is_invalid_input(order_id: str) -> None:
    with pytest.raises(InvalidInput, match="page_token is invalid"):
        # json.dumps escapes the NUL as \u0000; decoding the token brings it back.
        decode_cursor(token_of(json.dumps({"t": 1, "id": order_id})))
