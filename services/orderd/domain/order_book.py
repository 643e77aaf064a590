"""Order use cases for an authenticated user. No gRPC, no SQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from grpcdemo.errors import InvalidInput, NotFound

from orderd.domain.orders import (
    Order,
    OrderItem,
    OrderStatus,
    parse_order_id,
    request_fingerprint,
    total_cents,
    validate_items,
    validate_request_id,
)
from orderd.domain.pagination import Cursor, decode_cursor, encode_cursor, page_size

Clock = Callable[[], datetime]


class OrderNotFound(NotFound):
    reason = "not_found"


class RequestIdReused(InvalidInput):
    """A request_id already used for a different basket: a caller bug, not a retry."""


@dataclass(frozen=True)
class Created:
    order: Order
    replayed: bool


@dataclass(frozen=True)
class Page:
    orders: tuple[Order, ...]
    next_page_token: str


class OrderRepository(Protocol):
    async def create_once(self, order: Order, fingerprint: str) -> tuple[Order, str, bool]:
        """Store `order` unless the user already has one with its request_id. Returns the stored
        order, the fingerprint it was created with, and whether it was created now. Must be safe
        under concurrent calls with the same (user_id, request_id): exactly one order results."""

    async def get(self, user_id: str, order_id: str) -> Order | None: ...

    async def list_newest_first(self, user_id: str, limit: int, after: Cursor | None) -> Sequence[Order]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class OrderBook:
    def __init__(self, orders: OrderRepository, clock: Clock = utc_now) -> None:
        self._orders = orders
        self._clock = clock

    async def create(self, user_id: str, request_id: str, items: Sequence[OrderItem]) -> Created:
        request_id = validate_request_id(request_id)
        valid_items = validate_items(items)
        fingerprint = request_fingerprint(valid_items)
        candidate = Order(
            id=str(uuid.uuid4()),
            user_id=user_id,
            request_id=request_id,
            items=valid_items,
            total_cents=total_cents(valid_items),
            status=OrderStatus.CREATED,
            created_at=self._clock(),
        )
        order, stored_fingerprint, created = await self._orders.create_once(candidate, fingerprint)
        if stored_fingerprint != fingerprint:
            raise RequestIdReused(
                f"request_id {request_id!r} was already used for a different order; use a new request_id"
            )
        return Created(order, replayed=not created)

    async def get(self, user_id: str, order_id: str) -> Order:
        order = await self._orders.get(user_id, parse_order_id(order_id))
        if order is None:
            # Another user's order is indistinguishable from a missing one.
            raise OrderNotFound("order not found")
        return order

    async def list(self, user_id: str, requested_page_size: int, page_token: str) -> Page:
        size = page_size(requested_page_size)
        after = decode_cursor(page_token)
        # One extra row tells whether another page exists without a count query.
        rows = await self._orders.list_newest_first(user_id, size + 1, after)
        orders = tuple(rows[:size])
        next_token = ""
        if len(rows) > size:
            last = orders[-1]
            next_token = encode_cursor(Cursor(last.created_at, last.id))
        return Page(orders, next_token)
