from __future__ import annotations

import subprocess
import sys
import textwrap

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from shared.observability.tracing import (
    aio_client_interceptors,
    aio_server_interceptor,
    build_span_exporter,
    create_tracer_provider,
    otlp_endpoint,
    service_name_from,
)


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


def test_interceptor_factories_return_the_aio_kinds() -> None:
    import grpc

    provider = create_tracer_provider("x", environ={})
    assert isinstance(aio_server_interceptor(provider), grpc.aio.ServerInterceptor)
    client = aio_client_interceptors(provider)
    assert [type(i).__bases__[0] for i in client] == [
        grpc.aio.UnaryUnaryClientInterceptor,
        grpc.aio.UnaryStreamClientInterceptor,
        grpc.aio.StreamUnaryClientInterceptor,
        grpc.aio.StreamStreamClientInterceptor,
    ]
    provider.shutdown()


def test_global_install_is_idempotent_and_silent() -> None:
    # The global provider can be set once per process, so this runs in a fresh interpreter.
    script = textwrap.dedent(
        """
        import logging
        logging.basicConfig(level=logging.WARNING)
        from opentelemetry import trace
        from shared.observability.tracing import create_tracer_provider, install_global_tracer_provider
        first = create_tracer_provider("a", environ={})
        second = create_tracer_provider("b", environ={})
        print(install_global_tracer_provider(first), install_global_tracer_provider(second))
        print(trace.get_tracer_provider() is first)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.split() == ["True", "False", "True"]
    assert "Overriding" not in result.stderr
