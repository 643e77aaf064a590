"""Reads the current OpenTelemetry span for logs and exemplars. Only the OpenTelemetry API is used
here, so the metrics code does not depend on how (or whether) tracing is configured."""

from __future__ import annotations

from opentelemetry import trace


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as lower-case hex, or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def trace_exemplar(span: trace.Span | None = None) -> dict[str, str] | None:
    """`{"trace_id": ...}` for `span` (default: the current one) when it is sampled, else None.

    An unsampled trace never reaches the tracing backend, so an exemplar pointing at it would be a
    dead link in Grafana; those are left out.
    """
    span_context = (span or trace.get_current_span()).get_span_context()
    if not (span_context.is_valid and span_context.trace_flags.sampled):
        return None
    return {"trace_id": format(span_context.trace_id, "032x")}
