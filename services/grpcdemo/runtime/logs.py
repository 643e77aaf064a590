"""Structured logging shared by the services: JSON or console, with the current trace and span ids
on every line written inside a request. Secrets never reach a handler: known secret-bearing keys are
redacted from `extra` fields before formatting."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry import trace

from grpcdemo.observability.log_export import REDACTED, SECRET_KEYS

_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class TraceContextFilter(logging.Filter):
    """Adds trace_id/span_id of the current span (empty outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        valid = span_context.is_valid
        record.trace_id = format(span_context.trace_id, "032x") if valid else ""
        record.span_id = format(span_context.span_id, "016x") if valid else ""
        return True


# The OpenTelemetry exporters log every failed export and every retry: with Jaeger or Loki down (or,
# in compose, not started) that is a warning or an error every second or two, per process, forever.
# What was lost is counted (spans_dropped_total, log_records_dropped_total); the lines say why.
THROTTLED_LOGGERS: Final = ("opentelemetry.exporter", "opentelemetry.sdk._shared_internal")
THROTTLE_SECONDS: Final = 60.0


class ExportNoiseFilter(logging.Filter):
    """At most one record per minute from each exporter logger; the next one that passes says how
    many were held back (`suppressed`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, period: float = THROTTLE_SECONDS) -> None:
        super().__init__()
        self._clock = clock
        self._period = period
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(THROTTLED_LOGGERS):
            return True
        now = self._clock()
        last = self._last.get(record.name)
        if last is not None and now - last < self._period:
            self._held[record.name] = self._held.get(record.name, 0) + 1
            return False
        self._last[record.name] = now
        held = self._held.pop(record.name, 0)
        if held:
            record.suppressed = held
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key in _STANDARD_ATTRS or key in {"trace_id", "span_id", "service"}:
            continue
        fields[key] = REDACTED if key.lower() in SECRET_KEYS else value
    return fields


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            entry["trace_id"] = trace_id
            entry["span_id"] = getattr(record, "span_id", "")
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ConsoleFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s " + service + " %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = extra_fields(record)
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            # The span id tells which of the trace's spans (the server span, an outgoing call) wrote it.
            extras = {"trace_id": trace_id, "span_id": getattr(record, "span_id", ""), **extras}
        if extras:
            text += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        return text


def configure_logging(service: str, level: str = "info", fmt: str = "console") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ExportNoiseFilter())
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else ConsoleFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
