"""Timing of repository operations as `<svc>_db_query_duration_seconds{operation}`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

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
        # bounded and makes the series exist from the first scrape.
        self._children = {op: histogram.labels(operation=op) for op in operations}

    @contextmanager
    def time(self, operation: str) -> Iterator[None]:
        child = self._children[operation]
        start = time.perf_counter()
        try:
            yield
        finally:
            child.observe(time.perf_counter() - start)


class NullTimer:
    """For repositories built without metrics (unit tests, tools)."""

    @contextmanager
    def time(self, operation: str) -> Iterator[None]:
        yield
