"""The exposition as other tools read it: `promtool check metrics`, a real Prometheus storing
exemplars, and the series count under random traffic."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import grpc
import pytest
from grpcdemo.observability import ServiceObservability
from grpcdemo.observability.grpc_metrics import GRPC_LATENCY_BUCKETS
from grpcdemo.observability.grpc_names import GO_CODE_NAMES
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from tests.integration.observability.conftest import EchoStack
from tests.support.observability_echo import (
    ASYNC_METHODS,
    BIDI_PATH,
    CLIENT_STREAM_PATH,
    SERVER_STREAM_PATH,
    SERVICE,
    STRICT_UNARY_PATH,
    UNARY_PATH,
    echo_channel,
    echo_server,
)
from tests.support.scraping_prometheus import scraping_prometheus

PROMTOOL = "/usr/bin/promtool"
WAIT_SECONDS = 30.0


@pytest.fixture
async def facade_traffic() -> AsyncIterator[tuple[ServiceObservability, InMemorySpanExporter, str]]:
    """The facade's server and client after calls of every kind, serving /metrics on a free port."""
    spans = InMemorySpanExporter()
    obs = ServiceObservability(
        "echod",
        version="1.0.0",
        registry=CollectorRegistry(),
        environ={},
        span_processors=[SimpleSpanProcessor(spans)],
        install_global_tracer=False,
    )
    exposition = obs.start_exposition("127.0.0.1:0")
    try:
        async with (
            echo_server(obs.handler_wrapper()) as server,
            echo_channel(server.target, obs.client_interceptors()) as channel,
        ):
            await channel.unary_unary(UNARY_PATH)(b"ok")
            for command in (b"abort:NOT_FOUND", b"raise", b"sleep:2"):
                with pytest.raises(grpc.aio.AioRpcError):
                    await channel.unary_unary(UNARY_PATH)(command, timeout=0.1)
            await channel.stream_unary(CLIENT_STREAM_PATH)(iter([b"ok", b"ok"]))
            assert len([m async for m in channel.unary_stream(SERVER_STREAM_PATH)(b"2|ok")]) == 2
            assert len([m async for m in channel.stream_stream(BIDI_PATH)(iter([b"ok"]))]) == 1
            yield obs, spans, exposition.url
    finally:
        obs.close()


async def test_promtool_finds_nothing_to_lint(
    facade_traffic: tuple[ServiceObservability, object, str],
) -> None:
    if shutil.which(PROMTOOL) is None:
        pytest.skip(f"{PROMTOOL} not installed (Debian package `prometheus`)")
    obs, _, _ = facade_traffic
    exposition = generate_latest(obs.registry)
    result = await asyncio.to_thread(
        subprocess.run,
        [PROMTOOL, "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=30,
        check=False,
    )
    # No exemptions needed: go-grpc-middleware's names already follow the conventions promtool lints
    # (`_total` counters, `_seconds` histogram, no `_count`/`_sum` clashes).
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


@pytest.mark.prometheus
async def test_prometheus_stores_exemplars_naming_captured_traces(
    facade_traffic: tuple[ServiceObservability, InMemorySpanExporter, str], tmp_path: Path
) -> None:
    _, spans, metrics_url = facade_traffic
    server_traces = {
        format(span.context.trace_id, "032x")
        for span in spans.get_finished_spans()
        if span.kind == SpanKind.SERVER and span.context is not None
    }
    assert server_traces
    async with scraping_prometheus(tmp_path, {"echod": int(metrics_url.rsplit(":", 1)[1])}) as prometheus:
        exemplar_traces = await prometheus.wait_for_exemplars(
            "grpc_server_handling_seconds_bucket", WAIT_SECONDS, grpc_service=SERVICE
        )
    assert exemplar_traces <= server_traces


async def test_series_stay_bounded_under_random_traffic(echo_stack: EchoStack) -> None:
    """Random metadata (user ids, request ids), payloads and outcomes: only method, type and code
    reach the labels. Bound per method and side: started, msg_sent, msg_received, in-flight (server),
    one histogram (len(buckets) + 1 `le` series + _count + _sum) and at most 17 codes."""
    rng = random.Random(20240607)
    codes = [code.name for code in grpc.StatusCode if code is not grpc.StatusCode.OK]
    outcomes = [b"ok", b"none", b"raise", *(f"abort:{c}".encode() for c in codes), b"setcode:ALREADY_EXISTS"]
    noise: set[str] = set()

    def metadata() -> tuple[tuple[str, str], ...]:
        user, request = uuid4().hex, uuid4().hex
        noise.update((user, request))
        return (("x-user-id", user), ("x-request-id", request), ("x-email", f"{user}@example.com"))

    async def one_call() -> None:
        kind = rng.randrange(4)
        try:
            if kind == 0:
                payload = rng.choice(outcomes) if rng.random() < 0.7 else b"ok"
                await echo_stack.channel.unary_unary(UNARY_PATH)(payload, metadata=metadata())
            elif kind == 1:
                command = rng.choice([b"ok", b"raise", b"abort:NOT_FOUND", b"setcode:INTERNAL"])
                await echo_stack.channel.unary_unary(STRICT_UNARY_PATH)(command, metadata=metadata())
            elif kind == 2:
                request = b"%d|%s" % (rng.randrange(4), rng.choice(outcomes[:8]))
                async for _ in echo_stack.channel.unary_stream(SERVER_STREAM_PATH)(
                    request, metadata=metadata()
                ):
                    pass
            else:
                messages = [
                    uuid4().hex.encode() if rng.random() < 0.2 else b"ok" for _ in range(rng.randrange(1, 4))
                ]
                async for _ in echo_stack.channel.stream_stream(BIDI_PATH)(
                    iter(messages), metadata=metadata()
                ):
                    pass
        except (grpc.aio.AioRpcError, ValueError):
            pass

    for _ in range(40):
        await asyncio.gather(*(one_call() for _ in range(50)))

    scrape = await echo_stack.scrape()
    methods_per_side = len(ASYNC_METHODS)
    per_method = 3 + 1 + (len(GRPC_LATENCY_BUCKETS) + 1 + 2) + len(GO_CODE_NAMES)
    bound = 2 * methods_per_side * per_method
    grpc_series = [key for key in scrape.samples if key[0].startswith("grpc_")]
    assert len(grpc_series) <= bound, (len(grpc_series), bound)

    label_values = {value for _, labels in grpc_series for value in dict(labels).values()}
    assert not (label_values & noise)
    services = {dict(labels).get("grpc_service") for _, labels in grpc_series}
    assert services == {SERVICE}
    observed_codes = {dict(labels)["grpc_code"] for _, labels in grpc_series if "grpc_code" in dict(labels)}
    assert observed_codes <= set(GO_CODE_NAMES.values())
    assert len(observed_codes) > 10  # the traffic really did produce many outcomes
    total_started = sum(
        value for (name, _), value in scrape.samples.items() if name == "grpc_server_started_total"
    )
    assert total_started == 2000
