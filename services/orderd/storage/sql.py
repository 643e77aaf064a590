"""OrderRepository on SQLAlchemy Core: each method one connection checkout and as few statements as
the answer needs (an order and its items come back in one joined query), timed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from grpcdemo.persistence.database import Database
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from orderd.domain.orders import Order, OrderItem, OrderStatus
from orderd.domain.pagination import Cursor
from orderd.storage.schema import order_items, orders

OPERATIONS: Final = ("create_order", "get_order", "list_orders")

_ORDER_COLUMNS: Final = (
    orders.c.id,
    orders.c.user_id,
    orders.c.request_id,
    orders.c.request_fingerprint,
    orders.c.total_cents,
    orders.c.status,
    orders.c.created_at,
)
_ITEM_COLUMNS: Final = (order_items.c.sku, order_items.c.quantity, order_items.c.unit_price_cents)
_INSERT_ORDER: Final = orders.insert()
_INSERT_ITEMS: Final = order_items.insert()


def _with_items(order_query: Any) -> Any:
    """`order_query` (a subquery of orders rows) joined with their items, in page order."""
    page = order_query.subquery()
    return (
        select(*(page.c[c.name] for c in _ORDER_COLUMNS), *_ITEM_COLUMNS)
        .join_from(page, order_items, order_items.c.order_id == page.c.id)
        .order_by(page.c.created_at.desc(), page.c.id.desc(), order_items.c.position)
    )


_BY_REQUEST: Final = _with_items(
    select(*_ORDER_COLUMNS).where(
        orders.c.user_id == bindparam("user_id"), orders.c.request_id == bindparam("request_id")
    )
)
_BY_ID: Final = _with_items(
    select(*_ORDER_COLUMNS).where(
        orders.c.id == bindparam("order_id"), orders.c.user_id == bindparam("user_id")
    )
)
_NEWEST: Final = select(*_ORDER_COLUMNS).order_by(orders.c.created_at.desc(), orders.c.id.desc())
_FIRST_PAGE: Final = _with_items(
    _NEWEST.where(orders.c.user_id == bindparam("user_id")).limit(bindparam("limit"))
)
_NEXT_PAGE: Final = _with_items(
    _NEWEST.where(
        orders.c.user_id == bindparam("user_id"),
        or_(
            orders.c.created_at < bindparam("after_created_at"),
            and_(orders.c.created_at == bindparam("after_created_at"), orders.c.id < bindparam("after_id")),
        ),
    ).limit(bindparam("limit"))
)


def _orders(rows: Iterable[Any]) -> list[tuple[Order, str]]:
    """Joined rows (one per item, grouped by order, in _ORDER_COLUMNS + _ITEM_COLUMNS order) ->
    orders with their fingerprints, in order. Positional: a page is up to 101 orders' items."""
    grouped: list[tuple[Any, list[OrderItem]]] = []
    current_id = None
    items: list[OrderItem] = []
    for row in rows:
        if row[0] != current_id:
            current_id, items = row[0], []
            grouped.append((row, items))
        items.append(OrderItem(row[7], row[8], row[9]))
    return [
        (
            Order(
                id=head[0],
                user_id=head[1],
                request_id=head[2],
                items=tuple(order_items),
                total_cents=head[4],
                status=OrderStatus(head[5]),
                created_at=head[6],
            ),
            head[3],
        )
        for head, order_items in grouped
    ]


class SqlOrderRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_once(self, order: Order, fingerprint: str) -> tuple[Order, str, bool]:
        values = {
            "id": order.id,
            "user_id": order.user_id,
            "request_id": order.request_id,
            "request_fingerprint": fingerprint,
            "total_cents": order.total_cents,
            "status": order.status.value,
            "created_at": order.created_at,
        }
        items = [
            {
                "order_id": order.id,
                "position": n,
                "sku": i.sku,
                "quantity": i.quantity,
                "unit_price_cents": i.unit_price_cents,
            }
            for n, i in enumerate(order.items)
        ]

        def insert(connection: Connection) -> None:
            connection.execute(_INSERT_ORDER, values)
            connection.execute(_INSERT_ITEMS, items)

        try:
            # Insert first: a new request_id (the common case) costs one round of statements. The
            # unique (user_id, request_id) constraint decides retries, also concurrent ones.
            await self._db.run("create_order", insert, write=True)
        except IntegrityError:
            params = {"user_id": order.user_id, "request_id": order.request_id}
            found = await self._db.run("create_order", lambda c: _orders(c.execute(_BY_REQUEST, params)))
            if not found:
                raise
            existing, stored_fingerprint = found[0]
            return existing, stored_fingerprint, False
        return order, fingerprint, True

    async def get(self, user_id: str, order_id: str) -> Order | None:
        params = {"order_id": order_id, "user_id": user_id}
        found = await self._db.run("get_order", lambda c: _orders(c.execute(_BY_ID, params)))
        return found[0][0] if found else None

    async def list_newest_first(self, user_id: str, limit: int, after: Cursor | None) -> Sequence[Order]:
        if after is None:
            query, params = _FIRST_PAGE, {"user_id": user_id, "limit": limit}
        else:
            query = _NEXT_PAGE
            params = {
                "user_id": user_id,
                "limit": limit,
                "after_created_at": after.created_at,
                "after_id": after.order_id,
            }
        found = await self._db.run("list_orders", lambda c: _orders(c.execute(query, params)))
        return [order for order, _ in found]
