"""OpenTelemetry tracing for one service process: the provider, and the server and client spans the
handler wrapper and the client interceptors open.

The spans follow the OpenTelemetry RPC conventions that opentelemetry-instrumentation-grpc also
follows (name `/pkg.Service/Method`, kind SERVER or CLIENT, `rpc.system`, `rpc.service`,
`rpc.method`, `rpc.grpc.status_code`; status ERROR for server-fault codes on the server, any non-OK
code on the client) and propagate W3C `traceparent` through the global propagator, so they join
traces with any other OpenTelemetry-instrumented gRPC peer. They are opened here rather than by that
package's interceptors: one wrapper per call instead of another interceptor layer, and no handler
kind it cannot run (it awaits sync handlers and `async for`s writer-style streams).

The provider is built and handed over explicitly instead of going through the global one: the
global can be set only once per process ("Overriding of current TracerProvider is not allowed"),
which tests that build many providers would trip over. Installing it as the global, for code that
calls `trace.get_tracer()`, is a separate, idempotent step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from typing import Any, Final

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from prometheus_client import CollectorRegistry, Counter

from grpcdemo.observability.grpc_names import MethodName, status_code_of

__all__ = [
    "ClientSpans",
    "ServerSpans",
    "build_span_exporter",
    "create_tracer_provider",
    "exports_spans",
    "install_global_tracer_provider",
    "otlp_endpoint",
    "service_name_from",
    "traced",
]

log = logging.getLogger(__name__)

INSTRUMENTATION_NAME: Final = "grpcdemo.observability"

# Server-fault codes: the server span is an error for these only (OpenTelemetry RPC conventions);
# a caller's bad request is not the server's error.
_SERVER_ERROR_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

# Health probes and reflection are infrastructure, not requests worth a trace each (a balancer checks
# every few seconds, a Watch stays open for the life of a connection). Their metrics are recorded.
_UNTRACED_PREFIXES: Final = ("/grpc.health.", "/grpc.reflection.")


def traced(path: str) -> bool:
    return not path.startswith(_UNTRACED_PREFIXES)


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


class CountedSpanExporter(SpanExporter):
    """Counts what the wrapped exporter shipped and what it dropped, as the log export does: a
    tracing backend that is down (Jaeger stopped, a name that does not resolve) costs no request
    anything, and shows in `spans_dropped_total` instead of only in the exporter's log lines."""

    def __init__(self, inner: SpanExporter, registry: CollectorRegistry) -> None:
        self._inner = inner
        self._exported = Counter(
            "spans_exported_total", "Spans the OTLP trace endpoint accepted.", registry=registry
        )
        self._dropped = Counter(
            "spans_dropped_total",
            "Spans not shipped over OTLP: the export failed.",
            ["reason"],
            registry=registry,
        )
        self._failed = self._dropped.labels("export_failed")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self._exported.inc(len(spans))
        else:
            self._failed.inc(len(spans))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def create_tracer_provider(
    service_name: str,
    *,
    environ: Mapping[str, str] | None = None,
    span_processors: Iterable[SpanProcessor] = (),
    resource_attributes: Mapping[str, str] | None = None,
    registry: CollectorRegistry | None = None,
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
        if registry is not None:
            exporter = CountedSpanExporter(exporter, registry)
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


def exports_spans(environ: Mapping[str, str] | None, span_processors: Iterable[SpanProcessor] = ()) -> bool:
    """Whether a provider built by create_tracer_provider with these settings hands its spans to
    anyone (an OTLP exporter, or processors such as a test's in-memory exporter)."""
    env = os.environ if environ is None else environ
    return otlp_endpoint(env) is not None or any(True for _ in span_processors)


class _UnexportedSpans:
    """Span contexts without span objects, for a process that exports no spans: the ids still join
    the caller's trace (W3C propagation), name exemplars and log lines, but nothing is built that no
    one would read (an SDK span costs ~20 us of CPU to open and close). Parent-based sampling, as
    the default sampler: sampled unless the caller's trace is not."""

    def __init__(self) -> None:
        self._ids = RandomIdGenerator()

    def span(self, parent: otel_context.Context | None) -> Span:
        caller = trace.get_current_span(parent).get_span_context()
        if caller.is_valid:
            trace_id, flags, state = caller.trace_id, caller.trace_flags, caller.trace_state
        else:
            trace_id, flags, state = self._ids.generate_trace_id(), _SAMPLED, _NO_STATE
        context = SpanContext(trace_id, self._ids.generate_span_id(), False, flags, state)
        return NonRecordingSpan(context)


_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_NO_STATE: Final = TraceState()


def _rpc_attributes(path: str) -> dict[str, Any]:
    name = MethodName.parse(path)
    return {"rpc.system": "grpc", "rpc.service": name.service, "rpc.method": name.method}


class ServerSpans:
    """Opens the server span of a call, as a child of the caller's `traceparent`, and makes it
    current (for exemplars and log lines) until `end`. With `exported=False` (no exporter, no
    processor) only span contexts are made (_UnexportedSpans)."""

    def __init__(self, provider: trace.TracerProvider, *, exported: bool = True) -> None:
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        self._unexported = None if exported else _UnexportedSpans()
        self._attributes: dict[str, dict[str, Any]] = {}
        self._propagator: object = None
        self._fields: set[str] = set()

    def _propagated_fields(self) -> set[str]:
        """The headers the configured propagators read (traceparent, tracestate, baggage by default),
        looked up again only when the global propagator is replaced."""
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:
            self._propagator, self._fields = propagator, set(propagator.fields)
        return self._fields

    def start(self, path: str, metadata: Any) -> tuple[Span, object]:
        # A call that carries none of the propagated headers starts a new trace without asking them.
        fields = self._propagated_fields()
        carrier = {key: value for key, value in metadata or () if key in fields and isinstance(value, str)}
        parent = propagate.extract(carrier) if carrier else otel_context.Context()
        if self._unexported is not None:
            span: Span = self._unexported.span(parent)
        else:
            attributes = self._attributes.get(path)
            if attributes is None:
                attributes = self._attributes.setdefault(path, _rpc_attributes(path))
            span = self._tracer.start_span(path, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def end(span: Span, token: object, code_name: str) -> None:
        """`code_name` in Go spelling, as the metrics record it."""
        if not span.is_recording():
            otel_context.detach(token)  # type: ignore[arg-type]
            return
        code = status_code_of(code_name)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_ERROR_CODES:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]


class ClientSpans:
    """Opens the client span of an outgoing call and writes its context into the call's metadata."""

    def __init__(self, provider: trace.TracerProvider, *, exported: bool = True) -> None:
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        self._unexported = None if exported else _UnexportedSpans()
        self._attributes: dict[str, dict[str, Any]] = {}

    def start(self, path: str, metadata: MutableSequence[tuple[str, str]]) -> Span:
        if self._unexported is not None:
            span: Span = self._unexported.span(None)
        else:
            attributes = self._attributes.get(path)
            if attributes is None:
                attributes = self._attributes.setdefault(path, _rpc_attributes(path))
            span = self._tracer.start_span(path, kind=SpanKind.CLIENT, attributes=attributes)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        metadata.extend(carrier.items())
        return span

    @staticmethod
    def end(span: Span, code_name: str) -> None:
        if not span.is_recording():
            return
        code = status_code_of(code_name)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
