"""A lost database, for both services: PostgreSQL behind a TCP proxy that the test cuts and restores.

While it is cut every call that needs the database answers UNAVAILABLE with a retryable message
(not INTERNAL), each service logs one line about it (no traceback per call), gRPC health goes
NOT_SERVING within 15 s and `<svc>_database_up` reads 0. Once the proxy is back, health returns to
SERVING by itself and the same calls succeed."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpcdemo.genproto.order.v1 import order_pb2
from grpcdemo.genproto.user.v1 import user_pb2

from tests.support.databases import postgres_database
from tests.support.services import Stack, bearer, running_stack
from tests.support.tcp_proxy import TcpProxy, tcp_proxy

pytestmark = pytest.mark.postgres

# Health must follow within 15 s: a failed call marks the database down at once, and with no calls
# the probe (every DATABASE_PROBE_SECONDS, 5 by default) notices.
HEALTH_WITHIN = 15.0


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{proxy.port}"))


async def serving(port: int, service: str = "") -> bool:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"{what}: not within {within:.0f}s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def code_of(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.fixture
async def proxied(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Stack, TcpProxy, TcpProxy]]:
    probe = getattr(request, "param", "1")
    async with postgres_database() as userd_url, postgres_database() as orderd_url:
        target = urlsplit(userd_url)
        with (
            tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as userd_proxy,
            tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as orderd_proxy,
        ):
            async with running_stack(
                through(userd_proxy, userd_url),
                through(orderd_proxy, orderd_url),
                userd_extra={"DATABASE_PROBE_SECONDS": probe},
                orderd_extra={"DATABASE_PROBE_SECONDS": probe},
            ) as stack:
                yield stack, userd_proxy, orderd_proxy


async def test_both_services_answer_unavailable_go_not_serving_and_recover(
    proxied: tuple[Stack, TcpProxy, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    stack, userd_proxy, orderd_proxy = proxied
    _, token = await stack.register_and_login(f"outage-{uuid.uuid4().hex[:8]}@example.com")
    item = order_pb2.OrderItem(sku="BOOK-1", quantity=1, unit_price_cents=100)
    created = await stack.orders.CreateOrder(
        order_pb2.CreateOrderRequest(request_id="before", items=[item]), metadata=bearer(token)
    )

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "Register": lambda: stack.users.Register(
            user_pb2.RegisterRequest(
                email=f"x-{uuid.uuid4().hex[:8]}@example.com", password="correct horse", name="X"
            ),
            timeout=10,
        ),
        "Login": lambda: stack.users.Login(
            user_pb2.LoginRequest(email="nobody@example.com", password="correct horse"), timeout=10
        ),
        "Me": lambda: stack.users.Me(user_pb2.MeRequest(), metadata=bearer(token), timeout=10),
        "CreateOrder": lambda: stack.orders.CreateOrder(
            order_pb2.CreateOrderRequest(request_id=uuid.uuid4().hex, items=[item]),
            metadata=bearer(token),
            timeout=10,
        ),
        "GetOrder": lambda: stack.orders.GetOrder(
            order_pb2.GetOrderRequest(order_id=created.order.id), metadata=bearer(token), timeout=10
        ),
        "ListOrders": lambda: stack.orders.ListOrders(
            order_pb2.ListOrdersRequest(), metadata=bearer(token), timeout=10
        ),
    }

    with caplog.at_level(logging.WARNING):
        userd_proxy.cut()
        orderd_proxy.cut()
        cut_at = time.monotonic()
        for name, call in calls.items():
            for _ in range(3):
                code, details = await code_of(call())
                if (
                    name in ("Me", "CreateOrder", "GetOrder", "ListOrders")
                    and code == grpc.StatusCode.UNAVAILABLE
                ):
                    # orderd's calls fail at its own database or, through Me, at userd's: both retryable.
                    assert "retry later" in details, (name, details)
                else:
                    assert code == grpc.StatusCode.UNAVAILABLE, (name, code, details)
                    assert details == "database unavailable; retry later", (name, details)
        for port in (stack.userd.port, stack.orderd.port):
            down = await until(not_serving(port), HEALTH_WITHIN - (time.monotonic() - cut_at), "NOT_SERVING")
            print(f"\nhealth NOT_SERVING {time.monotonic() - cut_at:.1f}s after the cut (waited {down:.1f}s)")
        assert stack.userd.registry.get_sample_value("userd_database_up") == 0
        assert stack.orderd.registry.get_sample_value("orderd_database_up") == 0
        # What liveness probes ask stays SERVING: restarting the process would not bring the database back.
        assert await serving(stack.userd.port, "liveness")
        assert await serving(stack.orderd.port, "liveness")

        down_lines = [r for r in caplog.records if r.getMessage() == "database unavailable"]
        assert {r.name for r in down_lines} == {"grpcdemo.persistence.database"}
        # One line per service for 18 failed calls and the probes: no flood, and no traceback.
        assert len(down_lines) <= 4, [r.__dict__.get("operation") for r in down_lines]
        assert all(r.exc_info is None for r in caplog.records)

        userd_proxy.restore()
        orderd_proxy.restore()
        for port in (stack.userd.port, stack.orderd.port):
            back = await until(is_serving(port), HEALTH_WITHIN, "SERVING again")
            print(f"\nhealth back to SERVING {back:.1f}s after the database returned (port {port})")
    for name, call in calls.items():
        code, details = await code_of(call())
        expected = grpc.StatusCode.UNAUTHENTICATED if name == "Login" else grpc.StatusCode.OK
        assert code == expected, (name, code, details)
    assert stack.userd.registry.get_sample_value("userd_database_up") == 1


def is_serving(port: int) -> Callable[[], Awaitable[bool]]:
    return lambda: serving(port)


def not_serving(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not await serving(port)

    return check


@pytest.mark.parametrize("proxied", ["5"], indirect=True)  # the production probe interval
async def test_health_follows_the_database_without_any_call(
    proxied: tuple[Stack, TcpProxy, TcpProxy],
) -> None:
    stack, userd_proxy, orderd_proxy = proxied
    userd_proxy.cut()
    orderd_proxy.cut()
    for port in (stack.userd.port, stack.orderd.port):
        took = await until(not_serving(port), HEALTH_WITHIN, "NOT_SERVING with no call to notice it")
        print(f"\nno calls: health NOT_SERVING after {took:.1f}s")
    userd_proxy.restore()
    orderd_proxy.restore()
    for port in (stack.userd.port, stack.orderd.port):
        await until(is_serving(port), HEALTH_WITHIN, "SERVING again")
