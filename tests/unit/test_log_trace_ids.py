"""Log lines written inside a request name its trace and span, in both formats."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from grpcdemo.runtime.logs import ConsoleFormatter, JsonFormatter, TraceContextFilter
from opentelemetry.sdk.trace import TracerProvider


def formatted(formatter: logging.Formatter, msg: str = "hello", **extra: object) -> str:
    record = logging.LogRecord("shared.test", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    TraceContextFilter().filter(record)
    return formatter.format(record)


@pytest.fixture
def span_ids() -> Iterator[tuple[str, str]]:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        context = span.get_span_context()
        yield format(context.trace_id, "032x"), format(context.span_id, "016x")


def test_console_line_inside_a_request_names_trace_and_span(span_ids: tuple[str, str]) -> None:
    trace_id, span_id = span_ids

    line = formatted(ConsoleFormatter("userd"), order="o-1")

    assert line.endswith(f"hello trace_id={trace_id} span_id={span_id} order=o-1")


def test_json_line_inside_a_request_names_trace_and_span(span_ids: tuple[str, str]) -> None:
    trace_id, span_id = span_ids

    entry = json.loads(formatted(JsonFormatter("userd")))

    assert (entry["trace_id"], entry["span_id"]) == (trace_id, span_id)


def test_lines_outside_a_request_carry_no_ids() -> None:
    line = formatted(ConsoleFormatter("userd"))
    entry = json.loads(formatted(JsonFormatter("userd")))

    assert line.endswith("hello")
    assert "trace_id" not in entry
    assert "span_id" not in entry
