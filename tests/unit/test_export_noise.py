"""A tracing or log backend that is down must not flood the services' own logs: the exporters'
loggers pass one line a minute each, and the next line says how many were held back."""

from __future__ import annotations

import logging

from grpcdemo.runtime.logs import ExportNoiseFilter


def record(name: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, "Transient error", (), None)


def test_one_exporter_line_a_minute_per_logger_then_the_count_held_back() -> None:
    now = [0.0]
    noise = ExportNoiseFilter(clock=lambda: now[0])
    traces = "opentelemetry.exporter.otlp.proto.grpc.exporter"
    logs = "opentelemetry.exporter.otlp.proto.http._log_exporter"
    assert noise.filter(record(traces))
    assert noise.filter(record(logs)), "each logger has its own minute"
    passed = 0
    for second in range(1, 60):
        now[0] = float(second)
        passed += noise.filter(record(traces))
    assert passed == 0
    now[0] = 60.0
    line = record(traces)
    assert noise.filter(line)
    assert vars(line)["suppressed"] == 59


def test_other_loggers_pass_untouched() -> None:
    noise = ExportNoiseFilter(clock=lambda: 0.0)
    assert all(noise.filter(record("userd.servicer")) for _ in range(100))
    assert all(noise.filter(record("opentelemetry.sdk.trace")) for _ in range(3))
