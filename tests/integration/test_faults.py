"""Fault injection as the handler wrapper's before-call hook, on a real grpc.aio server (127.0.0.1,
port 0) with a small UserService."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpcdemo.faults import FaultInjector, parse_state
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.observability.grpc_metrics import GrpcServerMetrics
from grpcdemo.observability.server import HandlerWrapper, InstrumentedServer
from prometheus_client import CollectorRegistry

ME = "/user.v1.UserService/Me"
ECHO = "/test.Echo/Echo"
ECHO_STREAM = "/test.Echo/EchoStream"


class FakeUsers(user_pb2_grpc.UserServiceServicer):
    async def Me(self, request: user_pb2.MeRequest, context: grpc.aio.ServicerContext) -> user_pb2.MeResponse:
        return user_pb2.MeResponse(user=user_pb2.User(id="u-1", email="a@example.com", name="A"))

    async def Register(
        self, request: user_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.RegisterResponse:
        return user_pb2.RegisterResponse(user=user_pb2.User(id="u-2", email=request.email, name=request.name))


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _echo_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield request
    yield request


@dataclass
class Server:
    port: int
    faults: FaultInjector
    registry: CollectorRegistry
    channel: grpc.aio.Channel

    @property
    def users(self) -> user_pb2_grpc.UserServiceStub:
        return user_pb2_grpc.UserServiceStub(self.channel)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channel)


@asynccontextmanager
async def fault_server(seed: int = 1) -> AsyncIterator[Server]:
    registry = CollectorRegistry()
    faults = FaultInjector("userd", registry, rng=random.Random(seed))
    # The wrapper the services use, with only its before-call hook: metrics outside the faults.
    wrapper = HandlerWrapper(GrpcServerMetrics(registry), before_call=faults.decide)
    grpc_server = grpc.aio.server()
    server = InstrumentedServer(grpc_server, wrapper)
    user_pb2_grpc.add_UserServiceServicer_to_server(FakeUsers(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Echo",
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(_echo),
                    "EchoStream": grpc.unary_stream_rpc_method_handler(_echo_stream),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Server(port, faults, registry, channel)
    finally:
        await channel.close()
        await server.stop(0)


def set_faults(server: Server, spec: dict[str, Any]) -> None:
    server.faults.set(parse_state(spec))


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_off_by_default_and_after_clear() -> None:
    async with fault_server() as server:
        assert (await server.users.Me(user_pb2.MeRequest(), timeout=5)).user.id == "u-1"
        set_faults(server, {"error": {"rate": 1, "code": "UNAVAILABLE"}})
        assert await code_of(server.users.Me(user_pb2.MeRequest(), timeout=5)) == grpc.StatusCode.UNAVAILABLE
        server.faults.clear()
        assert (await server.users.Me(user_pb2.MeRequest(), timeout=5)).user.id == "u-1"


async def test_error_restricted_to_one_method_with_a_clear_message() -> None:
    async with fault_server() as server:
        set_faults(server, {"error": {"rate": 1, "code": "UNAVAILABLE", "methods": [ME]}})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.users.Me(user_pb2.MeRequest(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "injected fault" in (caught.value.details() or "")
        registered = await server.users.Register(
            user_pb2.RegisterRequest(email="b@example.com", name="B"), timeout=5
        )
        assert registered.user.email == "b@example.com"


async def test_error_rate_with_seeded_rng() -> None:
    async with fault_server(seed=3) as server:
        set_faults(server, {"error": {"rate": 0.3, "code": "INTERNAL", "methods": ["Me"]}})
        codes = [await code_of(server.users.Me(user_pb2.MeRequest(), timeout=5)) for _ in range(400)]
        failed = codes.count(grpc.StatusCode.INTERNAL)
        assert failed + codes.count(grpc.StatusCode.OK) == 400
        # 4 standard deviations of binomial(400, 0.3) is 0.092.
        assert abs(failed / 400 - 0.3) < 0.092


async def test_latency_is_applied_then_the_handler_answers() -> None:
    async with fault_server() as server:
        set_faults(server, {"latency": {"min_ms": 1000, "methods": ["Me"]}})
        started = time.perf_counter()
        reply = await server.users.Me(user_pb2.MeRequest(), timeout=10)
        elapsed = time.perf_counter() - started
        assert reply.user.id == "u-1"
        assert 1.0 <= elapsed < 3.0
        started = time.perf_counter()
        await server.users.Register(user_pb2.RegisterRequest(email="c@example.com", name="C"), timeout=10)
        # Not delayed (generous bound: the machine is shared).
        assert time.perf_counter() - started < 0.5


async def test_latency_beyond_the_deadline_is_deadline_exceeded() -> None:
    async with fault_server() as server:
        set_faults(server, {"latency": {"min_ms": 2000}})
        assert (
            await code_of(server.users.Me(user_pb2.MeRequest(), timeout=0.2))
            == grpc.StatusCode.DEADLINE_EXCEEDED
        )


async def test_health_is_exempt_unless_named() -> None:
    async with fault_server() as server:
        set_faults(server, {"error": {"rate": 1, "code": "UNAVAILABLE"}})
        reply = await server.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        set_faults(server, {"error": {"rate": 1, "code": "UNAVAILABLE", "methods": ["Check"]}})
        assert (
            await code_of(server.health.Check(health_pb2.HealthCheckRequest(), timeout=5))
            == grpc.StatusCode.UNAVAILABLE
        )


async def test_async_streaming_handler_is_delayed_then_streams() -> None:
    async with fault_server() as server:
        set_faults(server, {"latency": {"min_ms": 200, "methods": ["/grpc.health.v1.Health/Watch"]}})
        started = time.perf_counter()
        call = server.health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        first = await call.read()
        assert time.perf_counter() - started >= 0.2
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        call.cancel()


async def test_generic_unary_and_stream_handlers_get_faults_too() -> None:
    async with fault_server() as server:
        echo = server.channel.unary_unary(ECHO)
        stream = server.channel.unary_stream(ECHO_STREAM)
        set_faults(
            server, {"latency": {"min_ms": 100}, "error": {"rate": 1, "code": "ABORTED", "methods": ["Echo"]}}
        )
        assert await code_of(echo(b"hi", timeout=5)) == grpc.StatusCode.ABORTED
        started = time.perf_counter()
        assert [m async for m in stream(b"hi", timeout=5)] == [b"hi", b"hi"]
        assert time.perf_counter() - started >= 0.1
        set_faults(server, {"error": {"rate": 1, "code": "RESOURCE_EXHAUSTED", "methods": ["EchoStream"]}})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [m async for m in stream(b"hi", timeout=5)]
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await echo(b"ok", timeout=5) == b"ok"


async def test_injected_faults_show_in_server_metrics_like_real_ones() -> None:
    async with fault_server() as server:
        registry = server.registry
        set_faults(server, {"error": {"rate": 1, "code": "INTERNAL", "methods": ["Me"]}})
        for _ in range(5):
            await code_of(server.users.Me(user_pb2.MeRequest(), timeout=5))
        set_faults(server, {"latency": {"min_ms": 300, "methods": ["Me"]}})
        await server.users.Me(user_pb2.MeRequest(), timeout=5)
        labels = {"grpc_type": "unary", "grpc_service": "user.v1.UserService", "grpc_method": "Me"}
        assert (
            registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "Internal"}) == 5
        )
        assert registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "OK"}) == 1
        # The injected 300 ms lands in the latency histogram: one observation above 0.2 s.
        assert registry.get_sample_value("grpc_server_handling_seconds_bucket", {**labels, "le": "0.2"}) == 5
        assert registry.get_sample_value("grpc_server_handling_seconds_count", labels) == 6
        assert registry.get_sample_value("userd_fault_injection_active", {"kind": "latency"}) == 1


async def test_concurrent_calls_sleep_concurrently() -> None:
    async with fault_server() as server:
        set_faults(server, {"latency": {"min_ms": 500, "methods": ["Me"]}})
        started = time.perf_counter()
        await asyncio.gather(*(server.users.Me(user_pb2.MeRequest(), timeout=20) for _ in range(20)))
        # An asyncio sleep, not a blocking one: twenty calls take about one delay (0.5 s), not 10 s.
        assert time.perf_counter() - started < 4
