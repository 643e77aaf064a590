"""Composition root: builds orderd from its config. Nothing is constructed at import time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from genproto.order.v1 import order_pb2, order_pb2_grpc
from grpc import aio
from prometheus_client import CollectorRegistry
from shared import db
from shared.db_metrics import QueryTimer
from shared.grpc_server import RunningServer, start_grpc_server
from sqlalchemy.ext.asyncio import AsyncEngine

from orderd.auth import UserdAuthenticator, open_channel
from orderd.config import OrderdConfig
from orderd.domain.order_book import Clock, OrderBook, OrderRepository, utc_now
from orderd.metrics import OrderdMetrics
from orderd.servicer import OrderServicer
from orderd.storage import sql

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_orderd"
SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name


@dataclass
class Overrides:
    """Test seams: replace the repository (no database is opened then) or the clock."""

    orders: OrderRepository | None = None
    clock: Clock | None = None
    registry: CollectorRegistry | None = None


@dataclass
class OrderdService:
    config: OrderdConfig
    grpc: RunningServer
    registry: CollectorRegistry
    userd_channel: aio.Channel
    engine: AsyncEngine | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace_seconds: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        grace = self.config.common.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        await self.grpc.stop(grace)
        await self.userd_channel.close()
        if self.engine is not None:
            await self.engine.dispose()


async def migrate(config: OrderdConfig) -> None:
    engine = db.create_engine(config.common.database_url)
    try:
        await db.migrate(engine, MIGRATIONS, VERSION_TABLE)
    finally:
        await engine.dispose()


async def create_server(config: OrderdConfig, overrides: Overrides | None = None) -> OrderdService:
    overrides = overrides or Overrides()
    registry = overrides.registry or CollectorRegistry()
    engine: AsyncEngine | None = None
    orders = overrides.orders
    if orders is None:
        engine = db.create_engine(config.common.database_url)
        if config.migrate_on_start:
            await db.migrate(engine, MIGRATIONS, VERSION_TABLE)
        orders = sql.SqlOrderRepository(engine, QueryTimer("orderd", sql.OPERATIONS, registry))
    channel = open_channel(config.userd_addr)
    servicer = OrderServicer(
        OrderBook(orders, clock=overrides.clock or utc_now),
        UserdAuthenticator(channel, config.auth_timeout_seconds),
        OrderdMetrics(registry),
    )
    running = await start_grpc_server(
        config.common.grpc_addr,
        lambda server: order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server),  # type: ignore[no-untyped-call]
        [SERVICE_NAME],
    )
    return OrderdService(config=config, grpc=running, registry=registry, userd_channel=channel, engine=engine)
