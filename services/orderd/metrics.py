"""orderd business counters. Every result value is created at start-up (zeros, not absent series)."""

from __future__ import annotations

from grpcdemo.runtime.result_counter import ResultCounter
from prometheus_client import CollectorRegistry, Counter

ORDER_RESULTS = ("success", "failed", "invalid_input", "unauthenticated")
FETCH_RESULTS = ("success", "not_found", "failed", "unauthenticated")


class OrderdMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.orders = ResultCounter(
            "orderd_service_total_orders",
            "CreateOrder calls by result; an idempotent replay counts as success.",
            ORDER_RESULTS,
            registry,
            fallback="failed",
        )
        self.idempotent_replays = Counter(
            "orderd_service_idempotent_replays",
            "CreateOrder calls answered with an existing order because the request_id was seen before.",
            registry=registry,
        )
        # The original design labelled this counter with order_id: one series per order, an
        # unbounded cardinality that grows until Prometheus falls over. Results only.
        self.fetched = ResultCounter(
            "orderd_service_total_fetched_orders",
            "GetOrder and ListOrders calls by result.",
            FETCH_RESULTS,
            registry,
            fallback="failed",
        )
