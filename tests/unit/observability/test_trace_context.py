from __future__ import annotations

from grpcdemo.observability.trace_context import current_trace_ids, trace_exemplar
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON


def test_outside_any_span_there_is_nothing() -> None:
    assert current_trace_ids() is None
    assert trace_exemplar() is None


def test_inside_a_sampled_span_ids_and_exemplar_name_it() -> None:
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        context = span.get_span_context()
        trace_id = format(context.trace_id, "032x")
        assert current_trace_ids() == (trace_id, format(context.span_id, "016x"))
        assert trace_exemplar() == {"trace_id": trace_id}
    assert current_trace_ids() is None


def test_unsampled_span_has_ids_for_logs_but_no_exemplar() -> None:
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("work"):
        ids = current_trace_ids()
        assert ids is not None
        assert len(ids[0]) == 32
        assert len(ids[1]) == 16
        assert trace_exemplar() is None
