"""The progress line's text (the loop that writes it: tests/integration/loadgen/test_progress_loop.py)."""

from __future__ import annotations

from loadgen.progress import Snapshot, format_line
from loadgen.stats import Window


def test_line_shows_rate_in_flight_errors_drops_and_percentiles() -> None:
    window = Window()
    for ms in (1, 2, 3, 4, 100):
        window.calls += 1
        window.latency.record(ms / 1000)
    window.unexpected = 1
    line = format_line(Snapshot(elapsed=12.5, target_rps=20, in_flight=3, dropped=7), window, seconds=0.5)
    assert "[   12.5s]" in line
    assert "10.0/s (target 20)" in line
    assert "in-flight    3" in line
    assert "errors     1" in line
    assert "dropped     7" in line
    assert "p50      3.0ms" in line
    assert "p99    100.0ms" in line
