"""In-memory OrderRepository for unit tests and test overrides of the composition root."""

from __future__ import annotations

from collections.abc import Sequence

from orderd.domain.orders import Order
from orderd.domain.pagination import Cursor


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self._orders: dict[str, tuple[Order, str]] = {}

    async def create_once(self, order: Order, fingerprint: str) -> tuple[Order, str, bool]:
        for existing, existing_fingerprint in self._orders.values():
            if existing.user_id == order.user_id and existing.request_id == order.request_id:
                return existing, existing_fingerprint, False
        self._orders[order.id] = (order, fingerprint)
        return order, fingerprint, True

    async def get(self, user_id: str, order_id: str) -> Order | None:
        entry = self._orders.get(order_id)
        return entry[0] if entry and entry[0].user_id == user_id else None

    async def list_newest_first(self, user_id: str, limit: int, after: Cursor | None) -> Sequence[Order]:
        mine = sorted(
            (o for o, _ in self._orders.values() if o.user_id == user_id),
            key=lambda o: (o.created_at, o.id),
            reverse=True,
        )
        if after is not None:
            mine = [o for o in mine if (o.created_at, o.id) < (after.created_at, after.order_id)]
        return mine[:limit]
