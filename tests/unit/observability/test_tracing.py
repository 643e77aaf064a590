from __future__ import annotations

from grpcdemo.observability.client import client_interceptors
from grpcdemo.observability.grpc_metrics import GrpcClientMetrics
from grpcdemo.observability.tracing import (
    ClientSpans,
    ServerSpans,
    build_span_exporter,
    create_tracer_provider,
    exports_spans,
    otlp_endpoint,
    service_name_from,
)
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def test_service_name_comes_from_the_service_unless_otel_service_name_is_set() -> None:
    assert service_name_from("userd", {}) == "userd"
    assert service_name_from("userd", {"OTEL_SERVICE_NAME": "userd-canary"}) == "userd-canary"
    assert service_name_from("userd", {"OTEL_SERVICE_NAME": "  "}) == "userd"


def test_no_endpoint_means_no_exporter() -> None:
    assert otlp_endpoint({}) is None
    assert build_span_exporter({}) is None


def test_endpoint_builds_an_otlp_grpc_exporter_traces_variable_first() -> None:
    assert otlp_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317"}) == "http://jaeger:4317"
    assert (
        otlp_endpoint(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4317",
            }
        )
        == "http://b:4317"
    )
    exporter = build_span_exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert isinstance(exporter, OTLPSpanExporter)
    exporter.shutdown()


def test_provider_samples_and_names_the_service_without_an_exporter() -> None:
    memory = InMemorySpanExporter()
    provider = create_tracer_provider(
        "userd", environ={"OTEL_SERVICE_NAME": "userd-test"}, span_processors=[SimpleSpanProcessor(memory)]
    )
    with provider.get_tracer("t").start_as_current_span("op") as span:
        assert span.get_span_context().trace_flags.sampled
    provider.shutdown()
    (finished,) = memory.get_finished_spans()
    assert finished.name == "op"
    assert finished.resource.attributes["service.name"] == "userd-test"


def test_providers_can_be_created_repeatedly_and_stay_separate() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    providers = [
        create_tracer_provider("a", environ={}, span_processors=[SimpleSpanProcessor(first)]),
        create_tracer_provider("b", environ={}, span_processors=[SimpleSpanProcessor(second)]),
    ]
    for provider in providers:
        with provider.get_tracer("t").start_as_current_span("op"):
            pass
        provider.shutdown()
    assert len(first.get_finished_spans()) == 1
    assert len(second.get_finished_spans()) == 1


def test_client_interceptors_cover_the_four_aio_kinds() -> None:
    import grpc

    provider = create_tracer_provider("x", environ={})
    client = client_interceptors(GrpcClientMetrics(None), ClientSpans(provider))
    assert [next(b for b in type(i).__mro__ if b.__module__.startswith("grpc.aio")) for i in client] == [
        grpc.aio.UnaryUnaryClientInterceptor,
        grpc.aio.UnaryStreamClientInterceptor,
        grpc.aio.StreamUnaryClientInterceptor,
        grpc.aio.StreamStreamClientInterceptor,
    ]
    provider.shutdown()


def test_server_span_continues_the_callers_trace_and_client_span_propagates_it() -> None:
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider("x", environ={}, span_processors=[SimpleSpanProcessor(exporter)])
    metadata: list[tuple[str, str]] = []
    client_span = ClientSpans(provider).start("/a.v1.S/M", metadata)
    assert [key for key, _ in metadata] == ["traceparent"]
    server_span, token = ServerSpans(provider).start("/a.v1.S/M", tuple(metadata))
    ServerSpans.end(server_span, token, "Internal")
    ClientSpans.end(client_span, "Internal")
    server, client = exporter.get_finished_spans()
    assert server.name == client.name == "/a.v1.S/M"
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert dict(server.attributes or {})["rpc.service"] == "a.v1.S"
    assert dict(server.attributes or {})["rpc.grpc.status_code"] == 13
    assert not server.status.is_ok
    provider.shutdown()


def test_a_callers_bad_request_is_no_server_span_error() -> None:
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider("x", environ={}, span_processors=[SimpleSpanProcessor(exporter)])
    span, token = ServerSpans(provider).start("/a.v1.S/M", ())
    ServerSpans.end(span, token, "InvalidArgument")
    (server,) = exporter.get_finished_spans()
    assert server.parent is None
    assert server.status.is_unset
    provider.shutdown()


def test_spans_are_exported_only_with_an_endpoint_or_a_processor() -> None:
    assert not exports_spans({})
    assert exports_spans({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317"})
    assert exports_spans({}, [SimpleSpanProcessor(InMemorySpanExporter())])


def test_unexported_spans_still_join_the_callers_trace_and_propagate_it() -> None:
    provider = create_tracer_provider("x", environ={})
    client = ClientSpans(provider, exported=False)
    server = ServerSpans(provider, exported=False)
    metadata: list[tuple[str, str]] = []
    outgoing = client.start("/a.v1.S/M", metadata)
    assert not outgoing.is_recording()
    [(key, traceparent)] = metadata
    assert key == "traceparent" and traceparent.endswith("-01")  # sampled, as parent-based sampling says

    span, token = server.start("/a.v1.S/M", tuple(metadata))
    try:
        current = trace.get_current_span().get_span_context()
        assert current.trace_id == outgoing.get_span_context().trace_id
        assert current.span_id not in (0, outgoing.get_span_context().span_id)
        # A nested outgoing call continues the same trace.
        nested: list[tuple[str, str]] = []
        client.start("/b.v1.S/M", nested)
        assert nested[0][1].split("-")[1] == format(current.trace_id, "032x")
    finally:
        ServerSpans.end(span, token, "Internal")
    assert not trace.get_current_span().get_span_context().is_valid
    provider.shutdown()


def test_an_unsampled_caller_stays_unsampled() -> None:
    provider = create_tracer_provider("x", environ={})
    caller = "00-" + "1" * 32 + "-" + "2" * 16 + "-00"
    span, token = ServerSpans(provider, exported=False).start("/a.v1.S/M", (("traceparent", caller),))
    try:
        assert not span.get_span_context().trace_flags.sampled
    finally:
        ServerSpans.end(span, token, "OK")
