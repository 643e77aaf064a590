"""The generator's own Prometheus metrics (scraped as job `loadgen`), next to the client-side gRPC
metrics and traces of grpcdemo.observability.

Label values are bounded: `rpc` is one of six method names, `code` one of the 17 status codes,
`scenario` one of the scenario names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import grpc
from grpcdemo.genproto.order.v1 import order_pb2
from grpcdemo.genproto.user.v1 import user_pb2
from grpcdemo.observability import ServiceObservability
from grpcdemo.observability.process import distribution_version
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from loadgen.kinds import Rpc, code_name

# From the intended send time, so they include the generator's own lag; up to the 5 s default
# deadline and a little beyond.
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


class LoadgenMetrics:
    def __init__(self, registry: CollectorRegistry, scenario: str) -> None:
        self.registry = registry
        Info("loadgen_scenario", "The scenario the load generator runs.", registry=registry).info(
            {"scenario": scenario}
        )
        self.target_rps = Gauge(
            "loadgen_target_requests_per_second",
            "Arrival rate the generator aims for now.",
            registry=registry,
        )
        self.in_flight = Gauge(
            "loadgen_in_flight_requests", "Requests sent and not yet answered.", registry=registry
        )
        requests = Counter(
            "loadgen_requests",
            "Requests finished, by RPC and gRPC status code (Go spelling, as in grpc_code).",
            ["rpc", "code"],
            registry=registry,
        )
        self.dropped = Counter(
            "loadgen_requests_dropped",
            "Arrivals not sent because --max-in-flight requests were already waiting for answers.",
            registry=registry,
        )
        latency = Histogram(
            "loadgen_request_latency_seconds",
            "Latency from the intended send time to the answer, by RPC.",
            ["rpc"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Children cached: `.labels()` on every call costs more than the increment.
        self._requests: dict[tuple[Rpc, grpc.StatusCode], Counter] = {}
        self._requests_family = requests
        self._latency = {rpc: latency.labels(rpc=rpc.value) for rpc in Rpc}
        for rpc in Rpc:
            self._requests_child(rpc, grpc.StatusCode.OK)

    def _requests_child(self, rpc: Rpc, code: grpc.StatusCode) -> Counter:
        child = self._requests.get((rpc, code))
        if child is None:
            child = self._requests_family.labels(rpc=rpc.value, code=code_name(code))
            self._requests[(rpc, code)] = child
        return child

    def observe(self, rpc: Rpc, code: grpc.StatusCode, seconds: float) -> None:
        self._requests_child(rpc, code).inc()
        self._latency[rpc].observe(seconds)


def observability(
    registry: CollectorRegistry, environ: Mapping[str, str] | None = None
) -> ServiceObservability:
    """The shared instrumentation on the generator's registry: `grpc_client_*` metrics and client
    spans (exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, so traces start here),
    process metrics and build info. Not installed as the global tracer provider: in tests the
    generator shares its process with the services."""
    obs = ServiceObservability(
        "loadgen",
        version=distribution_version("grpc-observability-demo"),
        registry=registry,
        environ=environ,
        install_global_tracer=False,
    )
    obs.preinitialize_client(
        user_pb2.DESCRIPTOR.services_by_name["UserService"],
        order_pb2.DESCRIPTOR.services_by_name["OrderService"],
    )
    return obs


def serve_metrics(obs: ServiceObservability, addr: str) -> int | None:
    """Starts /metrics (and /healthz) on HOST:PORT, port 0 picking a free one; returns the port, or
    None when `addr` is "" or "0". `obs.close()` stops it."""
    if addr.strip() in ("", "0"):
        return None
    return obs.start_exposition(addr.strip()).port
