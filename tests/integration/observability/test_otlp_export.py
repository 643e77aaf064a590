"""Spans reach an OTLP/gRPC collector when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpcdemo.observability.tracing import create_tracer_provider
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class FakeCollector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = threading.Event()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[FakeCollector, int]]:
    fake = FakeCollector()
    with ThreadPoolExecutor(max_workers=2) as pool:
        server = grpc.server(pool)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(fake, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            yield fake, port
        finally:
            server.stop(grace=None).wait(5)


def test_spans_are_exported_with_the_service_name(collector: tuple[FakeCollector, int]) -> None:
    fake, port = collector
    provider = create_tracer_provider(
        "userd", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
    )
    with provider.get_tracer("test").start_as_current_span("register") as span:
        trace_id = span.get_span_context().trace_id
    assert provider.force_flush(timeout_millis=10_000)
    provider.shutdown()

    assert fake.received.wait(timeout=10)
    resource_spans = [rs for request in fake.requests for rs in request.resource_spans]
    service_names = {
        attribute.value.string_value
        for rs in resource_spans
        for attribute in rs.resource.attributes
        if attribute.key == "service.name"
    }
    assert service_names == {"userd"}
    exported = [s for rs in resource_spans for scope in rs.scope_spans for s in scope.spans]
    assert [(s.name, int.from_bytes(s.trace_id, "big")) for s in exported] == [("register", trace_id)]
