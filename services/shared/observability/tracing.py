"""OpenTelemetry tracing for one service process.

The provider is built and handed to the gRPC interceptors explicitly instead of going through the
global one: the global can be set only once per process ("Overriding of current TracerProvider is
not allowed"), which tests that build many providers would trip over. Installing it as the global,
for code that calls `trace.get_tracer()`, is a separate, idempotent step.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors as _otel_aio_client_interceptors
from opentelemetry.instrumentation.grpc import aio_server_interceptor as _otel_aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, health_check, negate, service_prefix
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from shared.observability.trace_context import current_trace_ids

__all__ = [
    "TracingServerInterceptor",
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


# Health probes and reflection are infrastructure, not requests worth a trace each (a balancer checks
# every few seconds, a Watch stays open for the life of a connection). Their metrics are still
# recorded: this only keeps them out of tracing.
_TRACED: Final[Callable[[Any], bool]] = negate(any_of(health_check(), service_prefix("grpc.reflection.")))


class TracingServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """opentelemetry-instrumentation-grpc's grpc.aio server interceptor, applied only where it works.

    Its wrappers assume every behaviour is async and every response stream an async generator: it
    `await`s unary behaviours and `async for`s streaming ones. Handed a writer-style stream handler
    (a coroutine using `context.write`, such as grpc_health's `Watch`) or a sync handler, the call
    fails with a TypeError the client sees as UNKNOWN. So writer-style streams are presented to it as
    async generators yielding nothing (their writes still reach the client, inside the span), and
    sync handlers are left untraced: only a sync wrapper could keep their `abort()` working.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self._otel = _otel_aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or not _TRACED(handler_call_details):
            return handler
        traceable = _traceable_handler(handler)
        if traceable is None:
            return handler

        async def resolved(_: Any) -> Any:
            return traceable

        return await self._otel.intercept_service(resolved, handler_call_details)


def _traceable_handler(handler: Any) -> Any | None:
    """`handler` in a form OpenTelemetry's aio wrappers can run, or None for a sync handler."""
    behavior = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
        return None
    if not handler.response_streaming or inspect.isasyncgenfunction(behavior):
        return handler
    factory = (
        grpc.stream_stream_rpc_method_handler
        if handler.request_streaming
        else grpc.unary_stream_rpc_method_handler
    )
    return factory(
        _as_async_generator(behavior),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _as_async_generator(behavior: Callable[..., Awaitable[None]]) -> Callable[..., AsyncIterator[Any]]:
    async def write_through(request: Any, context: Any) -> AsyncIterator[Any]:
        await behavior(request, context)
        # A generator that yields nothing: the handler sent its messages itself with context.write,
        # which grpc.aio allows from an async generator handler too.
        return
        yield  # pragma: no cover - makes this an async generator function

    return write_through


def aio_server_interceptor(provider: TracerProvider) -> TracingServerInterceptor:
    """opentelemetry-instrumentation-grpc's grpc.aio server interceptor bound to `provider`, except
    for health and reflection, and made safe for every handler kind (see TracingServerInterceptor)."""
    return TracingServerInterceptor(provider)


def aio_client_interceptors(provider: TracerProvider) -> list[Any]:
    """opentelemetry-instrumentation-grpc's four grpc.aio client interceptors bound to `provider`."""
    return list(_otel_aio_client_interceptors(tracer_provider=provider))  # type: ignore[no-untyped-call]
