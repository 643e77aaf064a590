"""Timing of repository operations as `<svc>_db_query_duration_seconds{operation}`."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Histogram

# Local SQLite answers in well under a millisecond; Postgres over a network in a few; anything past
# a second is an incident.
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class QueryTimer:
    def __init__(self, service: str, operations: Iterable[str], registry: CollectorRegistry) -> None:
        histogram = Histogram(
            f"{service}_db_query_duration_seconds",
            "Duration of repository operations against the database.",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=registry,
        )
        # Operations are a fixed set, known up front: pre-creating the children keeps the label
        # bounded and makes the series exist from the first scrape. `ping` is the health probe's.
        self._children = {op: histogram.labels(operation=op) for op in (*operations, "ping")}

    def observe(self, operation: str, seconds: float) -> None:
        self._children[operation].observe(seconds)
