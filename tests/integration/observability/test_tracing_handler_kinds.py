"""Health, reflection and every handler kind on a server assembled as the services assemble it
(`ServiceHost`: the one handler wrapper with tracing, metrics, faults and error mapping; health and
reflection registered): each answers what it means, and each is still measured exactly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpcdemo.runtime.config import Env, read_common
from grpcdemo.runtime.host import ServiceHost
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support import services as service_support
from tests.support.observability_echo import (
    SERVICE,
    UNARY_PATH,
    WRITER_STREAM_PATH,
    Recorded,
    Scrape,
    echo_channel,
    echo_service_descriptor,
    eventually,
    generic_handlers,
    recorded,
    scrape,
    server_finished,
)

HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"
HEALTH_WATCH_PATH = "/grpc.health.v1.Health/Watch"
REFLECTION_PATH = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


@dataclass
class HostedEcho:
    host: ServiceHost
    spans: InMemorySpanExporter
    channel: grpc.aio.Channel

    async def scrape(self) -> Scrape:
        return await scrape(f"http://127.0.0.1:{self.host.metrics_port}")

    def server_span_names(self) -> list[str]:
        return [s.name for s in self.spans.get_finished_spans() if s.kind == SpanKind.SERVER]


@pytest.fixture
async def hosted() -> AsyncIterator[HostedEcho]:
    config = read_common(
        Env({"DATABASE_URL": "sqlite://", "SHUTDOWN_GRACE_SECONDS": "0"}),
        service_name="echod",
        grpc_default="127.0.0.1:0",
        metrics_default="127.0.0.1:0",
    )
    spans = InMemorySpanExporter()
    host = ServiceHost.open(config, service_support.test_observability("echod", spans))
    try:
        await host.serve(
            lambda server: server.add_generic_rpc_handlers(generic_handlers()), [echo_service_descriptor()]
        )
        async with echo_channel(f"127.0.0.1:{host.port}") as channel:
            yield HostedEcho(host, spans, channel)
    finally:
        await host.stop(0)


async def test_health_check_answers_serving_and_is_measured(hosted: HostedEcho) -> None:
    before = await hosted.scrape()
    stub = health_pb2_grpc.HealthStub(hosted.channel)

    response = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)

    assert response.status == health_pb2.HealthCheckResponse.SERVING
    assert recorded(before, await hosted.scrape(), "server", HEALTH_CHECK_PATH, "unary") == Recorded(
        1, {"OK": 1}, msg_sent=1, msg_received=1, latency_count=1, in_flight=0
    )


async def test_health_watch_streams_the_status_and_a_cancel_is_measured(hosted: HostedEcho) -> None:
    before = await hosted.scrape()
    stub = health_pb2_grpc.HealthStub(hosted.channel)

    call = stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    first = await call.read()
    call.cancel()

    assert isinstance(first, health_pb2.HealthCheckResponse)
    assert first.status == health_pb2.HealthCheckResponse.SERVING

    await server_finished(hosted, before, HEALTH_WATCH_PATH, "server_stream")
    assert recorded(before, await hosted.scrape(), "server", HEALTH_WATCH_PATH, "server_stream") == Recorded(
        1, {"Canceled": 1}, msg_sent=1, msg_received=1, latency_count=1, in_flight=0
    )


async def test_reflection_lists_the_services_and_is_measured(hosted: HostedEcho) -> None:
    before = await hosted.scrape()
    stub = reflection_pb2_grpc.ServerReflectionStub(hosted.channel)

    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=5)]

    assert len(responses) == 1
    names = {s.name for s in responses[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names

    await server_finished(hosted, before, REFLECTION_PATH, "bidi_stream")
    assert recorded(before, await hosted.scrape(), "server", REFLECTION_PATH, "bidi_stream") == Recorded(
        1, {"OK": 1}, msg_sent=1, msg_received=1, latency_count=1, in_flight=0
    )


async def test_health_and_reflection_are_not_traced_but_the_services_methods_are(hosted: HostedEcho) -> None:
    stub = health_pb2_grpc.HealthStub(hosted.channel)
    await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    reflection = reflection_pb2_grpc.ServerReflectionStub(hosted.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    assert len([r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=5)]) == 1
    assert await hosted.channel.unary_unary(UNARY_PATH)(b"ok", timeout=5) == b"ok"

    # The server span ends just after the client has its answer.
    async def traced() -> bool:
        return UNARY_PATH in hosted.server_span_names()

    await eventually(traced)
    assert hosted.server_span_names() == [UNARY_PATH]


async def test_writer_style_stream_answers_ok_and_is_measured(hosted: HostedEcho) -> None:
    before = await hosted.scrape()

    responses = [m async for m in hosted.channel.unary_stream(WRITER_STREAM_PATH)(b"3|ok", timeout=5)]

    assert responses == [b"0", b"1", b"2"]

    await server_finished(hosted, before, WRITER_STREAM_PATH, "server_stream")

    # Still traced: the writes happen inside the server span, which ends after the metrics are in.
    async def traced() -> bool:
        return hosted.server_span_names() == [WRITER_STREAM_PATH]

    await eventually(traced)
    assert recorded(before, await hosted.scrape(), "server", WRITER_STREAM_PATH, "server_stream") == Recorded(
        1, {"OK": 1}, msg_sent=3, msg_received=1, latency_count=1, in_flight=0
    )


async def test_writer_style_stream_abort_keeps_its_code(hosted: HostedEcho) -> None:
    call = hosted.channel.unary_stream(WRITER_STREAM_PATH)(b"1|abort:NOT_FOUND", timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [m async for m in call]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_watch_left_open_does_not_block_shutdown(hosted: HostedEcho) -> None:
    stub = health_pb2_grpc.HealthStub(hosted.channel)
    call = stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    assert (await call.read()).status == health_pb2.HealthCheckResponse.SERVING

    # Stopping turns health NOT_SERVING first, which an open Watch sees.
    stopping = asyncio.ensure_future(hosted.host.stop(0.5))
    update = await call.read()
    await stopping
    assert isinstance(update, health_pb2.HealthCheckResponse)
    assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
