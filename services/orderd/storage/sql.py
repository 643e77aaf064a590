from __future__ import annotations

from collections.abc import Sequence

from grpcdemo.persistence.timing import NullTimer, QueryTimer
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orderd.domain.orders import Order, OrderItem, OrderStatus
from orderd.domain.pagination import Cursor
from orderd.storage.schema import OrderItemRow, OrderRow

OPERATIONS = ("create_order", "get_order", "list_orders")


def _order(row: OrderRow) -> Order:
    return Order(
        id=row.id,
        user_id=row.user_id,
        request_id=row.request_id,
        items=tuple(OrderItem(i.sku, i.quantity, i.unit_price_cents) for i in row.items),
        total_cents=row.total_cents,
        status=OrderStatus(row.status),
        created_at=row.created_at,
    )


def _row(order: Order, fingerprint: str) -> OrderRow:
    return OrderRow(
        id=order.id,
        user_id=order.user_id,
        request_id=order.request_id,
        request_fingerprint=fingerprint,
        total_cents=order.total_cents,
        status=order.status.value,
        created_at=order.created_at,
        items=[
            OrderItemRow(position=n, sku=i.sku, quantity=i.quantity, unit_price_cents=i.unit_price_cents)
            for n, i in enumerate(order.items)
        ],
    )


async def _by_request(session: AsyncSession, user_id: str, request_id: str) -> OrderRow | None:
    query = select(OrderRow).where(OrderRow.user_id == user_id, OrderRow.request_id == request_id)
    row: OrderRow | None = await session.scalar(query)
    return row


class SqlOrderRepository:
    def __init__(self, engine: AsyncEngine, timer: QueryTimer | NullTimer | None = None) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._timer = timer or NullTimer()

    async def create_once(self, order: Order, fingerprint: str) -> tuple[Order, str, bool]:
        with self._timer.time("create_order"):
            async with self._sessions() as session:
                existing = await _by_request(session, order.user_id, order.request_id)
                if existing is not None:
                    return _order(existing), existing.request_fingerprint, False
            try:
                async with self._sessions.begin() as session:
                    session.add(_row(order, fingerprint))
                return order, fingerprint, True
            except IntegrityError:
                # A concurrent retry won the unique (user_id, request_id) race; its order is the one.
                async with self._sessions() as session:
                    winner = await _by_request(session, order.user_id, order.request_id)
                if winner is None:
                    raise
                return _order(winner), winner.request_fingerprint, False

    async def get(self, user_id: str, order_id: str) -> Order | None:
        with self._timer.time("get_order"):
            async with self._sessions() as session:
                row = await session.scalar(
                    select(OrderRow).where(OrderRow.id == order_id, OrderRow.user_id == user_id)
                )
        return None if row is None else _order(row)

    async def list_newest_first(self, user_id: str, limit: int, after: Cursor | None) -> Sequence[Order]:
        query = select(OrderRow).where(OrderRow.user_id == user_id)
        if after is not None:
            query = query.where(
                or_(
                    OrderRow.created_at < after.created_at,
                    and_(OrderRow.created_at == after.created_at, OrderRow.id < after.order_id),
                )
            )
        query = query.order_by(OrderRow.created_at.desc(), OrderRow.id.desc()).limit(limit)
        with self._timer.time("list_orders"):
            async with self._sessions() as session:
                rows = (await session.scalars(query)).all()
        return [_order(row) for row in rows]
