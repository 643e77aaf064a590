"""Every RPC of both services through real gRPC, with each outcome, then the EXACT change of every
gRPC server, gRPC client and business series, read from the services' /metrics endpoints.

A delta lists every sample that changed in the families we watch; anything else that moved (a
wrong code, a double count, a missed client call) makes the comparison fail."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpcdemo.faults import FaultState, LatencyFault, MethodFilter
from grpcdemo.genproto.order.v1 import order_pb2
from grpcdemo.genproto.user.v1 import user_pb2
from grpcdemo.runtime.logs import TraceContextFilter
from orderd.domain.orders import Order
from orderd.domain.pagination import Cursor
from userd.domain.tokens import TokenService, TokenSettings

from tests.support.observability_echo import Scrape, eventually, scrape
from tests.support.scraping_prometheus import scraping_prometheus
from tests.support.services import TEST_JWT_SECRET, Stack, bearer, running_stack

WATCHED = (
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_msg_received_total",
    "grpc_server_msg_sent_total",
    "grpc_server_handling_seconds_count",
    "grpc_client_started_total",
    "grpc_client_handled_total",
    "grpc_client_handling_seconds_count",
    "grpc_client_msg_sent_total",
    "grpc_client_msg_received_total",
    "userd_service_login_handler_total",
    "userd_service_register_handler_total",
    "userd_service_me_handler_total",
    "orderd_service_total_orders_total",
    "orderd_service_idempotent_replays_total",
    "orderd_service_total_fetched_orders_total",
)

Delta = dict[tuple[str, str, frozenset[tuple[str, str]]], float]


@dataclass
class Snapshot:
    userd: Scrape
    orderd: Scrape


async def snapshot(stack: Stack) -> Snapshot:
    return Snapshot(
        await scrape(f"http://127.0.0.1:{stack.userd.metrics_port}"),
        await scrape(f"http://127.0.0.1:{stack.orderd.metrics_port}"),
    )


def delta(before: Snapshot, after: Snapshot) -> Delta:
    changed: Delta = {}
    for service in ("userd", "orderd"):
        old: Scrape = getattr(before, service)
        new: Scrape = getattr(after, service)
        for (name, labels), value in new.samples.items():
            if name in WATCHED and value != old.samples.get((name, labels), 0.0):
                changed[(service, name, labels)] = value - old.samples.get((name, labels), 0.0)
    return changed


def server(service: str, grpc_service: str, method: str, code: str) -> Delta:
    """What one finished unary call adds on the server side."""
    labels = {("grpc_type", "unary"), ("grpc_service", grpc_service), ("grpc_method", method)}
    base = frozenset(labels)
    return {
        (service, "grpc_server_started_total", base): 1,
        (service, "grpc_server_handled_total", base | {("grpc_code", code)}): 1,
        (service, "grpc_server_msg_received_total", base): 1,
        **({(service, "grpc_server_msg_sent_total", base): 1} if code == "OK" else {}),
        (service, "grpc_server_handling_seconds_count", base): 1,
    }


def client_me(code: str, calls: int = 1) -> Delta:
    """What orderd's calls to userd.Me add on its client side: the request is counted as sent even
    when the call fails (userd down, deadline), the response only when one arrived."""
    base = frozenset({("grpc_type", "unary"), ("grpc_service", "user.v1.UserService"), ("grpc_method", "Me")})
    return {
        ("orderd", "grpc_client_started_total", base): calls,
        ("orderd", "grpc_client_handled_total", base | {("grpc_code", code)}): calls,
        ("orderd", "grpc_client_handling_seconds_count", base): calls,
        ("orderd", "grpc_client_msg_sent_total", base): calls,
        **({("orderd", "grpc_client_msg_received_total", base): calls} if code == "OK" else {}),
    }


def business(service: str, name: str, result: str | None = None) -> Delta:
    labels = frozenset({("result", result)}) if result else frozenset()
    return {(service, name, labels): 1}


def refused_by_userd(method: str, counter: str, me_result: str) -> Delta:
    """An orderd call whose token userd.Me rejects (as `me_result`): Unauthenticated on both sides
    of the hop, counted by both services' business counters."""
    return merged(
        server("orderd", ORDER, method, "Unauthenticated"),
        business("orderd", counter, "unauthenticated"),
        client_me("Unauthenticated"),
        server("userd", USER, "Me", "Unauthenticated"),
        business("userd", "userd_service_me_handler_total", me_result),
    )


def merged(*parts: Delta) -> Delta:
    total: Delta = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


USER = "user.v1.UserService"
ORDER = "order.v1.OrderService"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(
        f"sqlite+aiosqlite:///{tmp_path}/u.db",
        f"sqlite+aiosqlite:///{tmp_path}/o.db",
        userd_extra={"FAULT_INJECTION_ENABLED": "true"},
        orderd_extra={"AUTH_TIMEOUT_SECONDS": "0.3"},
    ) as running:
        yield running


async def measure(stack: Stack, call: Callable[[], Awaitable[object]], expect: grpc.StatusCode) -> Delta:
    """`call` is a thunk: a grpc.aio stub call starts the RPC when invoked, not when awaited."""
    before = await snapshot(stack)
    try:
        await call()
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        code = error.code()
    assert code == expect
    return delta(before, await snapshot(stack))


def item() -> order_pb2.OrderItem:
    return order_pb2.OrderItem(sku="SKU-1", quantity=1, unit_price_cents=100)


def token_of_unknown_user() -> str:
    """A valid, unexpired token (signed with the test stack's secret and userd's default issuer and
    audience) whose subject is no user: as if the account had been deleted after login."""
    tokens = TokenService(TokenSettings(TEST_JWT_SECRET.encode(), 900, "userd", "grpc-demo"))
    return tokens.issue(str(uuid.uuid4()), datetime.now(UTC)).token


async def test_pre_initialised_series_exist_before_any_call(stack: Stack) -> None:
    snap = await snapshot(stack)
    for method in ("Register", "Login", "Me"):
        labels = {"grpc_type": "unary", "grpc_service": USER, "grpc_method": method}
        assert snap.userd.has("grpc_server_started_total", **labels)
        assert snap.userd.has("grpc_server_handled_total", **labels, grpc_code="OK")
    for method in ("CreateOrder", "GetOrder", "ListOrders"):
        labels = {"grpc_type": "unary", "grpc_service": ORDER, "grpc_method": method}
        assert snap.orderd.has("grpc_server_handled_total", **labels, grpc_code="OK")
    assert snap.orderd.has(
        "grpc_client_handled_total", grpc_type="unary", grpc_service=USER, grpc_method="Me", grpc_code="OK"
    )
    for result in ("success", "user_not_found", "invalid_password", "invalid_input"):
        assert snap.userd.has("userd_service_login_handler_total", result=result)
    for result in ("success", "user_exists", "invalid_input"):
        assert snap.userd.has("userd_service_register_handler_total", result=result)
    for result in ("success", "invalid_token", "missing_token", "user_not_found"):
        assert snap.userd.has("userd_service_me_handler_total", result=result)
    for result in ("success", "failed", "invalid_input", "unauthenticated"):
        assert snap.orderd.has("orderd_service_total_orders_total", result=result)
    for result in ("success", "not_found", "failed", "unauthenticated"):
        assert snap.orderd.has("orderd_service_total_fetched_orders_total", result=result)
    assert snap.orderd.has("orderd_service_idempotent_replays_total")
    assert (
        snap.userd.value(
            "userd_build_info",
            version="test",
            python_version=snap.userd.series("userd_build_info")[0]["python_version"],
        )
        == 1
    )
    assert snap.userd.series("userd_db_query_duration_seconds_count")


async def test_userd_outcomes(stack: Stack) -> None:
    reg = user_pb2.RegisterRequest(email="m@example.com", password="password-1", name="M")
    assert await measure(stack, lambda: stack.users.Register(reg), grpc.StatusCode.OK) == merged(
        server("userd", USER, "Register", "OK"),
        business("userd", "userd_service_register_handler_total", "success"),
    )
    assert await measure(stack, lambda: stack.users.Register(reg), grpc.StatusCode.ALREADY_EXISTS) == merged(
        server("userd", USER, "Register", "AlreadyExists"),
        business("userd", "userd_service_register_handler_total", "user_exists"),
    )
    bad = user_pb2.RegisterRequest(email="bad", password="password-1", name="M")
    assert await measure(
        stack, lambda: stack.users.Register(bad), grpc.StatusCode.INVALID_ARGUMENT
    ) == merged(
        server("userd", USER, "Register", "InvalidArgument"),
        business("userd", "userd_service_register_handler_total", "invalid_input"),
    )
    logins = [
        ("password-1", "m@example.com", grpc.StatusCode.OK, "OK", "success"),
        (
            "password-2",
            "m@example.com",
            grpc.StatusCode.UNAUTHENTICATED,
            "Unauthenticated",
            "invalid_password",
        ),
        ("password-2", "x@example.com", grpc.StatusCode.UNAUTHENTICATED, "Unauthenticated", "user_not_found"),
        ("password-2", "not-an-email", grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument", "invalid_input"),
    ]
    token = ""
    for password, email, status, code, result in logins:
        request = user_pb2.LoginRequest(email=email, password=password)
        if status == grpc.StatusCode.OK:
            before = await snapshot(stack)
            token = (await stack.users.Login(request)).access_token
            got = delta(before, await snapshot(stack))
        else:
            got = await measure(stack, lambda r=request: stack.users.Login(r), status)  # type: ignore[misc]
        assert got == merged(
            server("userd", USER, "Login", code),
            business("userd", "userd_service_login_handler_total", result),
        ), result
    mes = [
        (bearer(token), grpc.StatusCode.OK, "OK", "success"),
        ((), grpc.StatusCode.UNAUTHENTICATED, "Unauthenticated", "missing_token"),
        (bearer("garbage"), grpc.StatusCode.UNAUTHENTICATED, "Unauthenticated", "invalid_token"),
        (
            bearer(token_of_unknown_user()),
            grpc.StatusCode.UNAUTHENTICATED,
            "Unauthenticated",
            "user_not_found",
        ),
    ]
    for metadata, status, code, result in mes:
        got = await measure(
            stack,
            lambda m=metadata: stack.users.Me(user_pb2.MeRequest(), metadata=m),  # type: ignore[misc]
            status,
        )
        assert got == merged(
            server("userd", USER, "Me", code), business("userd", "userd_service_me_handler_total", result)
        ), result


async def test_orderd_outcomes_and_the_hop_to_userd(stack: Stack) -> None:
    _, token = await stack.register_and_login("o@example.com")
    me_ok = merged(
        server("userd", USER, "Me", "OK"), business("userd", "userd_service_me_handler_total", "success")
    )
    create = order_pb2.CreateOrderRequest(request_id=str(uuid.uuid4()), items=[item()])

    before = await snapshot(stack)
    order = (await stack.orders.CreateOrder(create, metadata=bearer(token))).order
    assert delta(before, await snapshot(stack)) == merged(
        server("orderd", ORDER, "CreateOrder", "OK"),
        business("orderd", "orderd_service_total_orders_total", "success"),
        client_me("OK"),
        me_ok,
    )
    assert await measure(
        stack, lambda: stack.orders.CreateOrder(create, metadata=bearer(token)), grpc.StatusCode.OK
    ) == merged(
        server("orderd", ORDER, "CreateOrder", "OK"),
        business("orderd", "orderd_service_total_orders_total", "success"),
        business("orderd", "orderd_service_idempotent_replays_total"),
        client_me("OK"),
        me_ok,
    )
    invalid = order_pb2.CreateOrderRequest(request_id="r", items=[])
    assert await measure(
        stack,
        lambda: stack.orders.CreateOrder(invalid, metadata=bearer(token)),
        grpc.StatusCode.INVALID_ARGUMENT,
    ) == merged(
        server("orderd", ORDER, "CreateOrder", "InvalidArgument"),
        business("orderd", "orderd_service_total_orders_total", "invalid_input"),
        client_me("OK"),
        me_ok,
    )
    assert await measure(
        stack,
        lambda: stack.orders.CreateOrder(create, metadata=bearer("garbage")),
        grpc.StatusCode.UNAUTHENTICATED,
    ) == refused_by_userd("CreateOrder", "orderd_service_total_orders_total", "invalid_token")
    # No token at all: refused without a round trip to userd.
    assert await measure(
        stack, lambda: stack.orders.CreateOrder(create), grpc.StatusCode.UNAUTHENTICATED
    ) == merged(
        server("orderd", ORDER, "CreateOrder", "Unauthenticated"),
        business("orderd", "orderd_service_total_orders_total", "unauthenticated"),
    )

    def get() -> Awaitable[object]:
        return stack.orders.GetOrder(order_pb2.GetOrderRequest(order_id=order.id), metadata=bearer(token))

    assert await measure(stack, lambda: get(), grpc.StatusCode.OK) == merged(
        server("orderd", ORDER, "GetOrder", "OK"),
        business("orderd", "orderd_service_total_fetched_orders_total", "success"),
        client_me("OK"),
        me_ok,
    )

    def missing() -> Awaitable[object]:
        return stack.orders.GetOrder(
            order_pb2.GetOrderRequest(order_id=str(uuid.uuid4())), metadata=bearer(token)
        )

    assert await measure(stack, lambda: missing(), grpc.StatusCode.NOT_FOUND) == merged(
        server("orderd", ORDER, "GetOrder", "NotFound"),
        business("orderd", "orderd_service_total_fetched_orders_total", "not_found"),
        client_me("OK"),
        me_ok,
    )

    def listed() -> Awaitable[object]:
        return stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(token))

    assert await measure(stack, lambda: listed(), grpc.StatusCode.OK) == merged(
        server("orderd", ORDER, "ListOrders", "OK"),
        business("orderd", "orderd_service_total_fetched_orders_total", "success"),
        client_me("OK"),
        me_ok,
    )

    def get_as(metadata: tuple[tuple[str, str], ...]) -> Callable[[], Awaitable[object]]:
        return lambda: stack.orders.GetOrder(order_pb2.GetOrderRequest(order_id=order.id), metadata=metadata)

    assert await measure(
        stack, get_as(bearer("garbage")), grpc.StatusCode.UNAUTHENTICATED
    ) == refused_by_userd("GetOrder", "orderd_service_total_fetched_orders_total", "invalid_token")
    # A well-signed token of a user that no longer exists: userd tells it apart, orderd need not.
    assert await measure(
        stack, get_as(bearer(token_of_unknown_user())), grpc.StatusCode.UNAUTHENTICATED
    ) == refused_by_userd("GetOrder", "orderd_service_total_fetched_orders_total", "user_not_found")
    # No token at all: refused without a round trip to userd.
    assert await measure(
        stack, lambda: stack.orders.ListOrders(order_pb2.ListOrdersRequest()), grpc.StatusCode.UNAUTHENTICATED
    ) == merged(
        server("orderd", ORDER, "ListOrders", "Unauthenticated"),
        business("orderd", "orderd_service_total_fetched_orders_total", "unauthenticated"),
    )


async def test_userd_too_slow_is_deadline_exceeded_on_the_hop_and_unavailable_from_orderd(
    stack: Stack,
) -> None:
    """userd not answering within AUTH_TIMEOUT_SECONDS (0.3 here) is a dependency failing: orderd's
    caller, who still had 10 s, gets a retryable UNAVAILABLE, and the hop shows DeadlineExceeded."""
    _, token = await stack.register_and_login("slow@example.com")
    stack.userd.faults.set(FaultState(latency=LatencyFault(800, 800, MethodFilter(frozenset({"Me"})))))
    create = order_pb2.CreateOrderRequest(request_id="slow", items=[item()])
    got = await measure(
        stack,
        lambda: stack.orders.CreateOrder(create, metadata=bearer(token), timeout=10),
        grpc.StatusCode.UNAVAILABLE,
    )
    # userd's own side of that call ends after orderd gave up (AUTH_TIMEOUT_SECONDS=0.3): not counted here.
    got = {k: v for k, v in got.items() if k[0] == "orderd"}
    assert got == merged(
        server("orderd", ORDER, "CreateOrder", "Unavailable"),
        business("orderd", "orderd_service_total_orders_total", "failed"),
        client_me("DeadlineExceeded"),
    )


async def test_client_cancel_is_canceled(stack: Stack) -> None:
    _, token = await stack.register_and_login("cancel@example.com")
    stack.userd.faults.set(FaultState(latency=LatencyFault(250, 250, MethodFilter(frozenset({"Me"})))))
    before = await snapshot(stack)
    call = stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(token))
    in_flight = {"grpc_service": ORDER, "grpc_method": "ListOrders"}

    async def orderd_has(name: str, labels: dict[str, str], value: float) -> bool:
        return (stack.orderd.registry.get_sample_value(name, labels) or 0) == value

    # Cancelled while orderd waits for userd (250 ms injected on Me), not before it arrived.
    await eventually(lambda: orderd_has("grpc_server_in_flight_requests", in_flight, 1))
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    labels = frozenset({("grpc_type", "unary"), ("grpc_service", ORDER), ("grpc_method", "ListOrders")})
    await eventually(lambda: orderd_has("grpc_server_in_flight_requests", in_flight, 0))
    got = delta(before, await snapshot(stack))
    assert got[("orderd", "grpc_server_handled_total", labels | {("grpc_code", "Canceled")})] == 1
    assert ("orderd", "grpc_server_handled_total", labels | {("grpc_code", "OK")}) not in got
    # The business counter records the cancelled call too, as its failure result.
    fetched = {
        k[2]: v for k, v in got.items() if k[:2] == ("orderd", "orderd_service_total_fetched_orders_total")
    }
    assert fetched == {frozenset({("result", "failed")}): 1}


async def test_userd_down_counts_unavailable_on_the_client(stack: Stack) -> None:
    _, token = await stack.register_and_login("down@example.com")
    await stack.userd.grpc.stop(0)  # type: ignore[union-attr]
    create = order_pb2.CreateOrderRequest(request_id="down", items=[item()])
    got = await measure(
        stack, lambda: stack.orders.CreateOrder(create, metadata=bearer(token)), grpc.StatusCode.UNAVAILABLE
    )
    got = {k: v for k, v in got.items() if k[0] == "orderd"}
    assert got == merged(
        server("orderd", ORDER, "CreateOrder", "Unavailable"),
        business("orderd", "orderd_service_total_orders_total", "failed"),
        client_me("Unavailable"),
    )
    get = order_pb2.GetOrderRequest(order_id=str(uuid.uuid4()))
    got = await measure(
        stack, lambda: stack.orders.GetOrder(get, metadata=bearer(token)), grpc.StatusCode.UNAVAILABLE
    )
    assert got == merged(
        server("orderd", ORDER, "GetOrder", "Unavailable"),
        business("orderd", "orderd_service_total_fetched_orders_total", "failed"),
        client_me("Unavailable"),
    )


class ExplodingOrders:
    async def create_once(self, order: Order, fingerprint: str) -> tuple[Order, str, bool]:
        raise RuntimeError("disk on fire: secret detail")

    async def get(self, user_id: str, order_id: str) -> Order | None:
        raise RuntimeError("disk on fire")

    async def list_newest_first(self, user_id: str, limit: int, after: Cursor | None) -> Sequence[Order]:
        raise RuntimeError("disk on fire")


async def test_unexpected_exception_is_internal_logged_with_trace_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from orderd import app as orderd_app
    from orderd import config as orderd_config

    from tests.support.services import orderd_env, test_observability

    caplog.handler.addFilter(TraceContextFilter())
    async with running_stack(
        f"sqlite+aiosqlite:///{tmp_path}/u.db", f"sqlite+aiosqlite:///{tmp_path}/o.db"
    ) as stack:
        _, token = await stack.register_and_login("boom@example.com")
        broken = await orderd_app.create_server(
            orderd_config.load(orderd_env("sqlite+aiosqlite:///:memory:", stack.userd.port)),
            orderd_app.Overrides(
                orders=ExplodingOrders(), observability=test_observability("orderd", stack.spans)
            ),
        )
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{broken.port}") as channel:
                from grpcdemo.genproto.order.v1 import order_pb2_grpc

                orders = order_pb2_grpc.OrderServiceStub(channel)
                with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as caught:
                    await orders.CreateOrder(
                        order_pb2.CreateOrderRequest(request_id="x", items=[item()]), metadata=bearer(token)
                    )
            assert caught.value.code() == grpc.StatusCode.INTERNAL
            assert "disk on fire" not in (caught.value.details() or "")
            snap = await scrape(f"http://127.0.0.1:{broken.metrics_port}")
            assert (
                snap.value(
                    "grpc_server_handled_total",
                    grpc_type="unary",
                    grpc_service=ORDER,
                    grpc_method="CreateOrder",
                    grpc_code="Internal",
                )
                == 1
            )
            assert snap.value("orderd_service_total_orders_total", result="failed") == 1
        finally:
            await broken.stop(grace_seconds=0)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "unhandled" in r.getMessage()]
    assert len(errors) == 1
    trace_ids = {format(s.context.trace_id, "032x") for s in stack.spans.get_finished_spans()}
    assert getattr(errors[0], "trace_id", "") in trace_ids


async def test_one_trace_spans_orderd_and_userd(stack: Stack) -> None:
    _, token = await stack.register_and_login("trace@example.com")
    stack.spans.clear()
    create = order_pb2.CreateOrderRequest(request_id="t", items=[item()])
    await stack.orders.CreateOrder(create, metadata=bearer(token))
    spans = stack.spans.get_finished_spans()
    by_name = {span.name: span for span in spans}
    server_span = by_name["/order.v1.OrderService/CreateOrder"]
    me_spans = [s for s in spans if s.name == "/user.v1.UserService/Me"]
    # orderd's client span and userd's server span for Me both belong to the caller's trace.
    assert len(me_spans) == 2
    assert {s.context.trace_id for s in me_spans} == {server_span.context.trace_id}


async def test_service_exposition_passes_promtool(stack: Stack, tmp_path: Path) -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    _, token = await stack.register_and_login("lint@example.com")
    await stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(token))
    for port in (stack.userd.metrics_port, stack.orderd.metrics_port):
        text = (await scrape(f"http://127.0.0.1:{port}")).text
        result = await asyncio.to_thread(
            subprocess.run,
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
        )
        # No exemptions needed: a finding of any kind fails here.
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == "", result.stdout


SERIES_BOUND_PER_SERVICE = 2000


async def test_series_stay_bounded_under_random_input(stack: Stack) -> None:
    """Random emails, passwords, order ids, page tokens, request ids and tokens: nothing random may
    become a label value, so the series count stays under a fixed bound."""
    import random

    rng = random.Random(42)
    _, token = await stack.register_and_login("card@example.com")

    def word(n: int = 12) -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))

    async def one() -> None:
        kind = rng.randrange(6)
        try:
            if kind == 0:
                await stack.users.Login(user_pb2.LoginRequest(email=f"{word()}@x.io", password=word()))
            elif kind == 1:
                await stack.users.Me(user_pb2.MeRequest(), metadata=bearer(word(40)))
            elif kind == 2:
                await stack.orders.GetOrder(
                    order_pb2.GetOrderRequest(order_id=rng.choice([word(), str(uuid.uuid4())])),
                    metadata=bearer(token),
                )
            elif kind == 3:
                await stack.orders.ListOrders(
                    order_pb2.ListOrdersRequest(page_token=word(20)), metadata=bearer(token)
                )
            elif kind == 4:
                sku = rng.choice([word(8), "", "bad sku!"])
                await stack.orders.CreateOrder(
                    order_pb2.CreateOrderRequest(
                        request_id=word(),
                        items=[
                            order_pb2.OrderItem(sku=sku, quantity=rng.randrange(-5, 5), unit_price_cents=1)
                        ],
                    ),
                    metadata=bearer(token),
                )
            else:
                await stack.users.Register(
                    user_pb2.RegisterRequest(
                        email=rng.choice([word(), f"{word()}@x.io"]), password=word(), name=word()
                    )
                )
        except grpc.aio.AioRpcError:
            pass

    for _ in range(30):
        await asyncio.gather(*(one() for _ in range(100)))
    for port in (stack.userd.metrics_port, stack.orderd.metrics_port):
        snap = await scrape(f"http://127.0.0.1:{port}")
        assert len(snap.samples) < SERIES_BOUND_PER_SERVICE, len(snap.samples)
        for _, labels in snap.samples:
            for _, value in labels:
                assert "@" not in value and len(value) < 64, value


@pytest.mark.prometheus
async def test_prometheus_scrapes_both_services_and_stores_their_exemplars(
    stack: Stack, tmp_path: Path
) -> None:
    _, token = await stack.register_and_login("exemplar@example.com")
    for n in range(3):
        create = order_pb2.CreateOrderRequest(request_id=f"ex-{n}", items=[item()])
        await stack.orders.CreateOrder(create, metadata=bearer(token))
    captured = {format(span.context.trace_id, "032x") for span in stack.spans.get_finished_spans()}
    targets = {"userd": stack.userd.metrics_port, "orderd": stack.orderd.metrics_port}
    async with scraping_prometheus(tmp_path, targets) as prometheus:
        families = {
            "grpc_server_handled_total",
            "grpc_client_handled_total",
            "userd_service_login_handler_total",
            "orderd_service_total_orders_total",
        }
        orderd_server = await prometheus.wait_for_exemplars(
            "grpc_server_handling_seconds_bucket", 30.0, job="orderd", grpc_method="CreateOrder"
        )
        userd_server = await prometheus.wait_for_exemplars(
            "grpc_server_handling_seconds_bucket", 30.0, job="userd", grpc_method="Me"
        )
        orderd_client = await prometheus.wait_for_exemplars(
            "grpc_client_handling_seconds_bucket", 30.0, job="orderd", grpc_method="Me"
        )
        names = await asyncio.to_thread(prometheus.api_data, "/api/v1/label/__name__/values")
    assert families <= set(names)
    # Each exemplar names a trace this test made, and orderd's CreateOrder, its call to userd and
    # userd's Me share traces: the exemplars link the hop's three histograms to one trace.
    assert orderd_server | userd_server | orderd_client <= captured
    assert orderd_server & userd_server & orderd_client
