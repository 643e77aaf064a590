"""OpenTelemetry tracing for one service process.

The provider is built and handed to the gRPC interceptors explicitly instead of going through the
global one: the global can be set only once per process ("Overriding of current TracerProvider is
not allowed"), which tests that build many providers would trip over. Installing it as the global,
for code that calls `trace.get_tracer()`, is a separate, idempotent step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors as _otel_aio_client_interceptors
from opentelemetry.instrumentation.grpc import aio_server_interceptor as _otel_aio_server_interceptor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from shared.observability.trace_context import current_trace_ids

__all__ = [
    "aio_client_interceptors",
    "aio_server_interceptor",
    "build_span_exporter",
    "create_tracer_provider",
    "current_trace_ids",
    "install_global_tracer_provider",
    "otlp_endpoint",
    "service_name_from",
]

log = logging.getLogger(__name__)


def service_name_from(default: str, environ: Mapping[str, str]) -> str:
    """OTEL_SERVICE_NAME, when set, renames the service in traces (the OpenTelemetry convention)."""
    return environ.get("OTEL_SERVICE_NAME", "").strip() or default


def otlp_endpoint(environ: Mapping[str, str]) -> str | None:
    """The traces-specific variable wins over the generic one, as in the OpenTelemetry spec."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def build_span_exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    """An OTLP/gRPC exporter when an endpoint is configured, else None (spans are created, sampled
    and carried in logs and exemplars, but not shipped anywhere).

    `http://host:4317` connects in plaintext; without a scheme the exporter uses TLS unless
    OTEL_EXPORTER_OTLP_INSECURE=true.
    """
    endpoint = otlp_endpoint(environ)
    if endpoint is None:
        return None
    # Imported only when used: it brings a gRPC channel and protobuf modules along.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


def create_tracer_provider(
    service_name: str,
    *,
    environ: Mapping[str, str] | None = None,
    span_processors: Iterable[SpanProcessor] = (),
    resource_attributes: Mapping[str, str] | None = None,
) -> TracerProvider:
    """A provider for `service_name` (or OTEL_SERVICE_NAME), sampling by default
    (parentbased_always_on unless OTEL_TRACES_SAMPLER says otherwise), exporting over OTLP when an
    endpoint is set. `span_processors` are added as well, e.g. an in-memory exporter in tests."""
    env = os.environ if environ is None else environ
    attributes: dict[str, Any] = dict(resource_attributes or {})
    attributes[SERVICE_NAME] = service_name_from(service_name, env)
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = build_span_exporter(env)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        log.info("exporting traces over OTLP", extra={"otlp_endpoint": otlp_endpoint(env)})
    for processor in span_processors:
        provider.add_span_processor(processor)
    return provider


def install_global_tracer_provider(provider: TracerProvider) -> bool:
    """Makes `provider` the process-wide one unless one is installed already; returns whether it was."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return False
    trace.set_tracer_provider(provider)
    return True


def aio_server_interceptor(provider: TracerProvider) -> Any:
    """opentelemetry-instrumentation-grpc's grpc.aio server interceptor bound to `provider`."""
    return _otel_aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]


def aio_client_interceptors(provider: TracerProvider) -> list[Any]:
    """opentelemetry-instrumentation-grpc's four grpc.aio client interceptors bound to `provider`."""
    return list(_otel_aio_client_interceptors(tracer_provider=provider))  # type: ignore[no-untyped-call]
