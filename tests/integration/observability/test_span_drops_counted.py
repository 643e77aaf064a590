"""Spans that cannot be shipped (the tracing backend is down or its name does not resolve, as
Jaeger's does not in the compose rehearsal) are dropped and counted, and cost no caller anything."""

from __future__ import annotations

import time

from grpcdemo.observability.tracing import create_tracer_provider
from prometheus_client import CollectorRegistry

from tests.support.processes import free_port


def test_a_failed_span_export_is_counted_as_dropped() -> None:
    registry = CollectorRegistry()
    # Nothing listens there: every export fails after its retries.
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    provider = create_tracer_provider("drops", environ=environ, registry=registry)
    started = time.monotonic()
    for _ in range(5):
        with provider.get_tracer("test").start_as_current_span("call"):
            pass
    assert time.monotonic() - started < 0.5, "ending spans waited on the exporter"
    provider.force_flush(timeout_millis=15_000)
    provider.shutdown()
    assert registry.get_sample_value("spans_dropped_total", {"reason": "export_failed"}) == 5
    assert registry.get_sample_value("spans_exported_total") == 0
