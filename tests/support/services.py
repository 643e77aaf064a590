"""Both services in-process over real gRPC on 127.0.0.1 ports chosen by the OS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from grpcdemo.genproto.order.v1 import order_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.observability.service import ServiceObservability
from grpcdemo.runtime.auth_metadata import auth_metadata
from grpcdemo.runtime.host import ServiceHost
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from orderd import app as orderd_app
from orderd import config as orderd_config
from prometheus_client import CollectorRegistry
from userd import app as userd_app
from userd import config as userd_config

TEST_JWT_SECRET = "test-secret-" + "x" * 32


def userd_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "JWT_SECRET": TEST_JWT_SECRET,
        "GRPC_ADDR": "127.0.0.1:0",
        "METRICS_ADDR": "127.0.0.1:0",
        "DATABASE_URL": database_url,
        "BCRYPT_ROUNDS": "4",
        **extra,
    }


def orderd_env(database_url: str, userd_port: int, **extra: str) -> dict[str, str]:
    return {
        "GRPC_ADDR": "127.0.0.1:0",
        "METRICS_ADDR": "127.0.0.1:0",
        "DATABASE_URL": database_url,
        "USERD_ADDR": f"127.0.0.1:{userd_port}",
        **extra,
    }


def test_observability(service: str, exporter: InMemorySpanExporter) -> ServiceObservability:
    """Isolated registry, no global tracer provider, no OTLP export; spans land in `exporter`."""
    return ServiceObservability(
        service,
        version="test",
        registry=CollectorRegistry(),
        environ={},
        span_processors=[SimpleSpanProcessor(exporter)],
        install_global_tracer=False,
    )


@dataclass
class Stack:
    userd: ServiceHost
    orderd: ServiceHost
    users: user_pb2_grpc.UserServiceStub
    orders: order_pb2_grpc.OrderServiceStub
    spans: InMemorySpanExporter
    users_channel: grpc.aio.Channel
    orders_channel: grpc.aio.Channel

    async def register_and_login(self, email: str, password: str = "correct horse") -> tuple[str, str]:
        """Returns (user_id, access token)."""
        registered = await self.users.Register(
            user_pb2.RegisterRequest(email=email, password=password, name="Test User")
        )
        login = await self.users.Login(user_pb2.LoginRequest(email=email, password=password))
        return registered.user.id, login.access_token


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return auth_metadata(token)


@asynccontextmanager
async def running_stack(
    userd_db: str,
    orderd_db: str,
    userd_extra: dict[str, str] | None = None,
    orderd_extra: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    spans = InMemorySpanExporter()
    userd = await userd_app.create_server(
        userd_config.load(userd_env(userd_db, **(userd_extra or {}))),
        userd_app.Overrides(observability=test_observability("userd", spans)),
    )
    orderd = await orderd_app.create_server(
        orderd_config.load(orderd_env(orderd_db, userd.port, **(orderd_extra or {}))),
        orderd_app.Overrides(observability=test_observability("orderd", spans)),
    )
    user_channel = grpc.aio.insecure_channel(f"127.0.0.1:{userd.port}")
    order_channel = grpc.aio.insecure_channel(f"127.0.0.1:{orderd.port}")
    try:
        yield Stack(
            userd,
            orderd,
            user_pb2_grpc.UserServiceStub(user_channel),
            order_pb2_grpc.OrderServiceStub(order_channel),
            spans,
            user_channel,
            order_channel,
        )
    finally:
        await user_channel.close()
        await order_channel.close()
        await orderd.stop(grace_seconds=1)
        await userd.stop(grace_seconds=1)
