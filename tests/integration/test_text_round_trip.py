"""Every value the text rules accept round-trips through both backends unchanged: what a caller
registers or orders is what it reads back, on SQLite and on PostgreSQL (which refuses NUL outright:
the rules keep it from ever reaching the database)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from grpcdemo.persistence.database import Database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orderd import app as orderd_app
from orderd.domain.orders import Order, OrderItem, OrderStatus, validate_items, validate_request_id
from orderd.storage.sql import OPERATIONS as ORDER_OPERATIONS
from orderd.storage.sql import SqlOrderRepository
from prometheus_client import CollectorRegistry
from userd import app as userd_app
from userd.domain.models import User
from userd.domain.validation import normalize_email, normalize_name
from userd.storage.sql import OPERATIONS as USER_OPERATIONS
from userd.storage.sql import SqlUserRepository

from tests.support.databases import database

text = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=60)
names = text.filter(lambda v: v.strip() != "")
local_parts = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=40
)
request_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
skus = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}", fullmatch=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def loop_and_databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[asyncio.AbstractEventLoop, Database, Database]]:
    """One loop for the whole test (hypothesis calls the body many times, synchronously)."""
    loop = asyncio.new_event_loop()
    stack = []

    async def open_db(
        name: str, migrations: Path, version_table: str, operations: tuple[str, ...]
    ) -> Database:
        context = database(str(request.param), tmp_path, name)
        url = await context.__aenter__()
        stack.append(context)
        db = Database(url, service=name, registry=CollectorRegistry(), operations=operations)
        await db.migrate(migrations, version_table)
        return db

    users = loop.run_until_complete(
        open_db("userd", userd_app.MIGRATIONS, userd_app.VERSION_TABLE, USER_OPERATIONS)
    )
    orders = loop.run_until_complete(
        open_db("orderd", orderd_app.MIGRATIONS, orderd_app.VERSION_TABLE, ORDER_OPERATIONS)
    )
    try:
        yield loop, users, orders
    finally:
        loop.run_until_complete(users.close())
        loop.run_until_complete(orders.close())
        for context in reversed(stack):
            loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()


def test_accepted_user_fields_read_back_unchanged(
    loop_and_databases: tuple[asyncio.AbstractEventLoop, Database, Database],
) -> None:
    loop, users_db, _ = loop_and_databases
    repository = SqlUserRepository(users_db)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(local=local_parts, name=names)
    def round_trip(local: str, name: str) -> None:
        try:
            email = normalize_email(f"{local}.{uuid.uuid4().hex[:8]}@example.com")
        except Exception:
            return  # not an address; the unit tests cover what is refused
        user = User(str(uuid.uuid4()), email, normalize_name(name), datetime.now(UTC))
        loop.run_until_complete(repository.add(user, "$2b$04$" + "x" * 53))
        stored = loop.run_until_complete(repository.credentials_by_email(email))
        assert stored is not None
        assert stored.user == user
        assert loop.run_until_complete(repository.by_id(user.id)) == user

    round_trip()


def test_accepted_order_fields_read_back_unchanged(
    loop_and_databases: tuple[asyncio.AbstractEventLoop, Database, Database],
) -> None:
    loop, _, orders_db = loop_and_databases
    repository = SqlOrderRepository(orders_db)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(request_id=request_ids, sku_list=st.lists(skus, min_size=1, max_size=5))
    def round_trip(request_id: str, sku_list: list[str]) -> None:
        items = validate_items([OrderItem(sku, n + 1, 100 * n) for n, sku in enumerate(sku_list)])
        user_id = str(uuid.uuid4())
        order = Order(
            str(uuid.uuid4()),
            user_id,
            validate_request_id(request_id),
            items,
            sum(i.subtotal_cents for i in items),
            OrderStatus.CREATED,
            datetime.now(UTC),
        )
        stored, _, created = loop.run_until_complete(repository.create_once(order, "f" * 64))
        assert created and stored == order
        assert loop.run_until_complete(repository.get(user_id, order.id)) == order

    round_trip()
