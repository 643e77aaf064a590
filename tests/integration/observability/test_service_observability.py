"""The facade as the services use it: tracing outside metrics, exemplars naming the traces the
in-memory exporter captured, OpenMetrics vs text, build info and runtime series, /healthz."""

from __future__ import annotations

import asyncio
import platform
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpcdemo.observability import ServiceObservability
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from tests.support.observability_echo import (
    BIDI_PATH,
    SERVER_STREAM_PATH,
    SERVICE,
    UNARY_PATH,
    Recorded,
    Scrape,
    echo_channel,
    echo_server,
    echo_service_descriptor,
    http_get,
    recorded,
    server_finished,
)

OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


@dataclass
class TracedStack:
    obs: ServiceObservability
    spans: InMemorySpanExporter
    metrics_url: str
    channel: grpc.aio.Channel
    ready: dict[str, bool]

    async def scrape(self) -> Scrape:
        _, _, body = await asyncio.to_thread(http_get, self.metrics_url + "/metrics")
        return Scrape(body.decode())

    async def openmetrics(self) -> str:
        status, _, body = await asyncio.to_thread(http_get, self.metrics_url + "/metrics", OPENMETRICS_ACCEPT)
        assert status == 200
        return body.decode()

    def span(self, kind: SpanKind, name: str) -> ReadableSpan:
        matching = [s for s in self.spans.get_finished_spans() if s.kind == kind and s.name == name]
        assert len(matching) == 1, [(s.kind, s.name) for s in self.spans.get_finished_spans()]
        return matching[0]


@pytest.fixture
async def traced() -> AsyncIterator[TracedStack]:
    spans = InMemorySpanExporter()
    obs = ServiceObservability(
        "echod",
        version="9.9.9",
        registry=CollectorRegistry(),
        environ={},
        span_processors=[SimpleSpanProcessor(spans)],
        install_global_tracer=False,
    )
    obs.preinitialize_server(echo_service_descriptor())
    obs.preinitialize_client(echo_service_descriptor())
    ready = {"value": False}
    exposition = obs.start_exposition("127.0.0.1:0", ready=lambda: ready["value"])
    try:
        async with (
            echo_server(obs.handler_wrapper()) as server,
            echo_channel(server.target, obs.client_interceptors()) as channel,
        ):
            yield TracedStack(obs, spans, exposition.url, channel, ready)
    finally:
        obs.close()


def exemplar_trace_ids(openmetrics: str, sample_name: str, **labels: str) -> set[str]:
    found = set()
    for family in parse_openmetrics(openmetrics):
        for sample in family.samples:
            if sample.name != sample_name or sample.exemplar is None:
                continue
            if all(sample.labels.get(key) == value for key, value in labels.items()):
                found.add(sample.exemplar.labels["trace_id"])
    return found


def hex_trace_id(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return format(context.trace_id, "032x")


async def test_histograms_carry_the_trace_id_of_the_call_in_openmetrics_only(traced: TracedStack) -> None:
    assert await traced.channel.unary_unary(UNARY_PATH)(b"ok") == b"ok"

    server_span = traced.span(SpanKind.SERVER, UNARY_PATH)
    client_span = traced.span(SpanKind.CLIENT, UNARY_PATH)
    trace_id = hex_trace_id(server_span)
    assert hex_trace_id(client_span) == trace_id  # propagated: one trace

    labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "Echo"}
    openmetrics = await traced.openmetrics()
    assert exemplar_trace_ids(openmetrics, "grpc_server_handling_seconds_bucket", **labels) == {trace_id}
    assert exemplar_trace_ids(openmetrics, "grpc_client_handling_seconds_bucket", **labels) == {trace_id}
    # OK counts carry none: only errors are worth a trace link.
    assert exemplar_trace_ids(openmetrics, "grpc_server_handled_total", **labels) == set()

    text = (await traced.scrape()).text
    assert "trace_id" not in text
    assert "# {" not in text


async def test_error_counts_carry_the_trace_id_of_the_failing_call(traced: TracedStack) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await traced.channel.unary_unary(UNARY_PATH)(b"abort:NOT_FOUND")
    trace_id = hex_trace_id(traced.span(SpanKind.SERVER, UNARY_PATH))

    openmetrics = await traced.openmetrics()
    labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "Echo", "grpc_code": "NotFound"}
    assert exemplar_trace_ids(openmetrics, "grpc_server_handled_total", **labels) == {trace_id}
    assert exemplar_trace_ids(openmetrics, "grpc_client_handled_total", **labels) == {trace_id}


async def test_metrics_stay_exact_with_tracing(traced: TracedStack) -> None:
    before = await traced.scrape()
    await traced.channel.unary_unary(UNARY_PATH)(b"ok")
    with pytest.raises(grpc.aio.AioRpcError):
        await traced.channel.unary_unary(UNARY_PATH)(b"raise")
    assert [m async for m in traced.channel.unary_stream(SERVER_STREAM_PATH)(b"3|ok")] == [b"0", b"1", b"2"]
    assert [m async for m in traced.channel.stream_stream(BIDI_PATH)(iter([b"ok", b"ok"]))] == [b"ok", b"ok"]

    await server_finished(traced, before, SERVER_STREAM_PATH, "server_stream")
    await server_finished(traced, before, BIDI_PATH, "bidi_stream")
    after = await traced.scrape()
    assert recorded(before, after, "server", UNARY_PATH, "unary") == Recorded(
        2, {"OK": 1, "Unknown": 1}, msg_sent=1, msg_received=2, latency_count=2, in_flight=0
    )
    assert recorded(before, after, "client", UNARY_PATH, "unary") == Recorded(
        2, {"OK": 1, "Unknown": 1}, msg_sent=2, msg_received=1, latency_count=2
    )
    assert recorded(before, after, "server", SERVER_STREAM_PATH, "server_stream") == Recorded(
        1, {"OK": 1}, msg_sent=3, msg_received=1, latency_count=1, in_flight=0
    )
    assert recorded(before, after, "client", SERVER_STREAM_PATH, "server_stream") == Recorded(
        1, {"OK": 1}, msg_sent=1, msg_received=3, latency_count=1
    )
    assert recorded(before, after, "server", BIDI_PATH, "bidi_stream") == Recorded(
        1, {"OK": 1}, msg_sent=2, msg_received=2, latency_count=1, in_flight=0
    )
    assert recorded(before, after, "client", BIDI_PATH, "bidi_stream") == Recorded(
        1, {"OK": 1}, msg_sent=2, msg_received=2, latency_count=1
    )


async def test_the_server_span_is_current_while_the_handler_runs(traced: TracedStack) -> None:
    """Tracing is outermost: a log line or a nested call made by the handler is inside the span."""
    from grpcdemo.observability import current_trace_ids

    seen: list[tuple[str, str] | None] = []
    wrapper = traced.obs.handler_wrapper()

    async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen.append(current_trace_ids())
        return request

    wrapped = wrapper.wrap(f"/{SERVICE}/Echo", grpc.unary_unary_rpc_method_handler(handler))
    server = grpc.aio.server()
    server.add_registered_method_handlers(SERVICE, {"Echo": wrapped})
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with echo_channel(f"127.0.0.1:{port}", traced.obs.client_interceptors()) as channel:
            assert await channel.unary_unary(UNARY_PATH)(b"hi") == b"hi"
    finally:
        await server.stop(None)
    span = traced.span(SpanKind.SERVER, UNARY_PATH)
    context = span.get_span_context()
    assert context is not None
    assert seen == [(hex_trace_id(span), format(context.span_id, "016x"))]


async def test_sync_handlers_are_left_to_grpc_untouched(traced: TracedStack) -> None:
    def sync_handler(request: bytes, context: object) -> bytes:
        return request

    handler = grpc.unary_unary_rpc_method_handler(sync_handler)
    assert traced.obs.handler_wrapper().wrap("/x.v1.S/M", handler) is handler


async def test_build_info_runtime_series_and_no_created_series(traced: TracedStack) -> None:
    scrape = await traced.scrape()
    assert scrape.value("echod_build_info", version="9.9.9", python_version=platform.python_version()) == 1
    assert "python_info" in scrape.families
    assert "python_gc_objects_collected" in scrape.families
    if platform.system() == "Linux":
        assert scrape.value("process_cpu_seconds_total") > 0
    assert "_created" not in scrape.text


async def test_healthz_follows_readiness(traced: TracedStack) -> None:
    assert (await asyncio.to_thread(http_get, traced.metrics_url + "/healthz"))[0] == 503
    traced.ready["value"] = True
    assert (await asyncio.to_thread(http_get, traced.metrics_url + "/healthz"))[0] == 200


async def test_exposition_starts_once_and_close_releases_the_port(traced: TracedStack) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        traced.obs.start_exposition("127.0.0.1:0")
    port = int(traced.metrics_url.rsplit(":", 1)[1])
    traced.obs.close()
    traced.obs.close()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
