"""Order rules, totals, idempotency and pagination without a server or a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from grpcdemo.errors import InvalidInput
from orderd.domain.order_book import OrderBook, OrderNotFound, RequestIdReused
from orderd.domain.orders import MAX_UNIT_PRICE_CENTS, OrderItem, total_cents, validate_items
from orderd.domain.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    decode_cursor,
    encode_cursor,
    page_size,
)
from orderd.storage.memory import InMemoryOrderRepository

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_total_is_exact_integer_cents() -> None:
    items = [OrderItem("A", 3, 333), OrderItem("B", 1000, MAX_UNIT_PRICE_CENTS)]
    assert total_cents(items) == 999 + 1000 * MAX_UNIT_PRICE_CENTS
    worst = [OrderItem(f"S{n}", 1000, MAX_UNIT_PRICE_CENTS) for n in range(100)]
    assert total_cents(validate_items(worst)) < 2**63


@pytest.mark.parametrize(
    ("items", "needle"),
    [
        ([], "at least one"),
        ([OrderItem("A", 1, 1)] * 101, "at most 100"),
        ([OrderItem("", 1, 1)], "sku is required"),
        ([OrderItem("has space", 1, 1)], "sku"),
        ([OrderItem("A", 0, 1)], "quantity"),
        ([OrderItem("A", 1001, 1)], "quantity"),
        ([OrderItem("A", 1, -1)], "unit_price_cents"),
        ([OrderItem("A", 1, MAX_UNIT_PRICE_CENTS + 1)], "unit_price_cents"),
    ],
)
def test_invalid_items(items: list[OrderItem], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        validate_items(items)


def test_free_items_are_allowed() -> None:
    assert validate_items([OrderItem("GIFT", 1, 0)])


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(7) == 7
    assert page_size(10_000) == MAX_PAGE_SIZE
    with pytest.raises(InvalidInput):
        page_size(-1)


def test_cursor_round_trip_keeps_microseconds() -> None:
    cursor = Cursor(
        datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), "0b6c2a4e-8f2d-4e1c-9b7a-3d5e6f708192"
    )
    token = encode_cursor(cursor)
    assert decode_cursor(token) == cursor
    assert decode_cursor("") is None


@pytest.mark.parametrize("token", ["!!", "bm90IGpzb24", "e30", "eyJ0IjoieCIsImlkIjoxfQ"])
def test_tampered_page_tokens_are_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput, match="page_token"):
        decode_cursor(token)


def ticking_clock() -> object:
    ticks = count()
    return lambda: T0 + timedelta(seconds=next(ticks))


async def test_create_is_idempotent_per_user_and_request_id() -> None:
    book = OrderBook(InMemoryOrderRepository(), clock=ticking_clock())  # type: ignore[arg-type]
    first = await book.create("u1", "r1", [OrderItem("A", 2, 50)])
    again = await book.create("u1", "r1", [OrderItem("A", 2, 50)])
    other_user = await book.create("u2", "r1", [OrderItem("A", 2, 50)])
    assert (first.replayed, again.replayed, other_user.replayed) == (False, True, False)
    assert again.order == first.order
    assert first.order.total_cents == 100
    with pytest.raises(RequestIdReused):
        await book.create("u1", "r1", [OrderItem("A", 3, 50)])


async def test_get_only_own_orders() -> None:
    book = OrderBook(InMemoryOrderRepository())
    order = (await book.create("u1", "r1", [OrderItem("A", 1, 1)])).order
    assert await book.get("u1", order.id) == order
    with pytest.raises(OrderNotFound):
        await book.get("u2", order.id)
    with pytest.raises(InvalidInput):
        await book.get("u1", "not-a-uuid")


async def test_list_pages_newest_first_with_ties() -> None:
    # Same timestamp for several orders: the id breaks ties, so no row is skipped or repeated.
    book = OrderBook(InMemoryOrderRepository(), clock=lambda: T0)
    ids = [(await book.create("u1", f"r{n}", [OrderItem("A", 1, 1)])).order.id for n in range(7)]
    await book.create("u2", "r0", [OrderItem("A", 1, 1)])
    seen, token = [], ""
    while True:
        page = await book.list("u1", 3, token)
        seen += [o.id for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(ids, reverse=True)
