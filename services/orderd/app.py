"""Composition root: builds orderd from its config. Nothing is constructed at import time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grpcdemo.genproto.order.v1 import order_pb2, order_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2
from grpcdemo.observability.service import ServiceObservability
from grpcdemo.persistence.database import Database
from grpcdemo.runtime.channels import balanced_channel
from grpcdemo.runtime.host import ServiceHost
from prometheus_client import CollectorRegistry

from orderd.auth import UserdAuthenticator
from orderd.config import OrderdConfig
from orderd.domain.order_book import Clock, OrderBook, OrderRepository, utc_now
from orderd.metrics import OrderdMetrics
from orderd.servicer import OrderServicer
from orderd.storage import sql

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_orderd"
ORDER_SERVICE = order_pb2.DESCRIPTOR.services_by_name["OrderService"]
USER_SERVICE = user_pb2.DESCRIPTOR.services_by_name["UserService"]


@dataclass
class Overrides:
    """Test seams: a repository (no database is opened then), a clock, an observability bundle."""

    orders: OrderRepository | None = None
    clock: Clock | None = None
    observability: ServiceObservability | None = None


async def migrate(config: OrderdConfig) -> None:
    """`orderd migrate`: upgrade DATABASE_URL to head and exit."""
    db = Database(config.common.database_url, service="orderd", registry=CollectorRegistry(), operations=())
    try:
        await db.migrate(MIGRATIONS, VERSION_TABLE)
    finally:
        await db.close()


async def create_server(config: OrderdConfig, overrides: Overrides | None = None) -> ServiceHost:
    overrides = overrides or Overrides()
    host = ServiceHost.open(config.common, overrides.observability)
    try:
        orders = overrides.orders
        if orders is None:
            db = await host.open_database(
                sql.OPERATIONS, MIGRATIONS if config.migrate_on_start else None, VERSION_TABLE
            )
            orders = sql.SqlOrderRepository(db)
        # The hop to userd is what the client metrics measure: same interceptors, same registry.
        host.observability.preinitialize_client(USER_SERVICE)
        channel = balanced_channel(
            config.userd_addr, host.observability.client_interceptors(), lb_policy=config.userd_lb_policy
        )
        host.on_stop(channel.close)
        servicer = OrderServicer(
            OrderBook(orders, clock=overrides.clock or utc_now),
            UserdAuthenticator(channel, config.auth_timeout_seconds),
            OrderdMetrics(host.registry),
        )
        await host.serve(
            lambda server: order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server),  # type: ignore[no-untyped-call]
            [ORDER_SERVICE],
        )
    except BaseException:
        await host.stop(grace_seconds=0)
        raise
    return host
