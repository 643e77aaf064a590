"""Keyset pagination for newest-first listings, with opaque page tokens."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from grpcdemo.errors import InvalidInput
from grpcdemo.text import check_text

from orderd.domain.orders import parse_order_id

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Cursor:
    """Position after the last row of a page: rows strictly older, or as old with a smaller id."""

    created_at: datetime
    order_id: str


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidInput(f"page_size must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def encode_cursor(cursor: Cursor) -> str:
    micros = int(cursor.created_at.timestamp()) * 1_000_000 + cursor.created_at.microsecond
    payload = json.dumps({"t": micros, "id": cursor.order_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor | None:
    if not token:
        return None
    check_text(token, "page_token")
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        micros, order_id = payload["t"], payload["id"]
        if not isinstance(micros, int) or not isinstance(order_id, str):
            raise TypeError
        # What encode_cursor writes is an order id (a UUID): anything else, a NUL included, is not ours.
        order_id = parse_order_id(order_id)
        created_at = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
    except Exception:
        # The token is untrusted caller input and decoding it is pure, so any failure means a bad
        # token, whatever the exception: ValueError, KeyError, binascii.Error, OverflowError, OSError,
        # and RecursionError from deeply nested JSON, which would otherwise surface as INTERNAL.
        raise InvalidInput("page_token is invalid: pass next_page_token from the previous response") from None
    return Cursor(created_at, order_id)
