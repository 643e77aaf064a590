"""Orders and the rules for creating them. No gRPC, no SQL."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from grpcdemo.errors import InvalidInput
from grpcdemo.text import check_text

MAX_ITEMS = 100
MAX_QUANTITY = 1000
MAX_SKU_LENGTH = 64
# $100M per unit keeps the largest possible total (100 items x 1000 x this) far inside int64.
MAX_UNIT_PRICE_CENTS = 10_000_000_000
MAX_REQUEST_ID_LENGTH = 64

# Matched with fullmatch: `$` alone would accept a trailing newline ("A\n").
_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]*")
_REQUEST_ID = re.compile(r"[\x21-\x7e]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class OrderStatus(Enum):
    CREATED = "created"


@dataclass(frozen=True)
class OrderItem:
    sku: str
    quantity: int
    unit_price_cents: int

    @property
    def subtotal_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    request_id: str
    items: tuple[OrderItem, ...]
    total_cents: int
    status: OrderStatus
    created_at: datetime


def validate_request_id(request_id: str) -> str:
    check_text(request_id, "request_id")
    if not request_id:
        raise InvalidInput("request_id is required: send a client-chosen key (e.g. a UUID) per order")
    if len(request_id) > MAX_REQUEST_ID_LENGTH or not _REQUEST_ID.fullmatch(request_id):
        raise InvalidInput(
            f"request_id must be 1..{MAX_REQUEST_ID_LENGTH} printable ASCII characters without spaces"
        )
    return request_id


def validate_items(items: Sequence[OrderItem]) -> tuple[OrderItem, ...]:
    if not items:
        raise InvalidInput("an order needs at least one item")
    if len(items) > MAX_ITEMS:
        raise InvalidInput(f"an order has at most {MAX_ITEMS} items, got {len(items)}")
    for index, item in enumerate(items):
        where = f"items[{index}]"
        check_text(item.sku, f"{where}.sku")
        if not item.sku:
            raise InvalidInput(f"{where}.sku is required")
        if len(item.sku) > MAX_SKU_LENGTH or not _SKU.fullmatch(item.sku):
            raise InvalidInput(
                f"{where}.sku must be 1..{MAX_SKU_LENGTH} characters of letters, digits, '.', '_', '-', '/'"
            )
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise InvalidInput(f"{where}.quantity must be between 1 and {MAX_QUANTITY}, got {item.quantity}")
        if not 0 <= item.unit_price_cents <= MAX_UNIT_PRICE_CENTS:
            raise InvalidInput(
                f"{where}.unit_price_cents must be between 0 and {MAX_UNIT_PRICE_CENTS}, "
                f"got {item.unit_price_cents}"
            )
    return tuple(items)


def total_cents(items: Sequence[OrderItem]) -> int:
    return sum(item.subtotal_cents for item in items)


def request_fingerprint(items: Sequence[OrderItem]) -> str:
    """Identifies the content of a creation request, so a request_id reused for a different
    basket is refused instead of silently answered with the first order."""
    canonical = json.dumps([[i.sku, i.quantity, i.unit_price_cents] for i in items], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_order_id(raw: str) -> str:
    check_text(raw, "order_id")
    if not raw:
        raise InvalidInput("order_id is required")
    # uuid.UUID also takes braces, a "urn:uuid:" prefix and no hyphens; the API promises one form.
    if not _UUID.fullmatch(raw.lower()):
        raise InvalidInput("order_id must be a UUID as returned by CreateOrder")
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidInput("order_id must be a UUID as returned by CreateOrder") from None
