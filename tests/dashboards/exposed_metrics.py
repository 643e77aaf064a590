"""Every metric name the services expose, read from the code that registers them rather than from a
hand-kept list: rename a metric there and the dashboard test that uses this fails."""

from __future__ import annotations

from typing import Final

from grpcdemo.faults import FaultInjector
from grpcdemo.observability.grpc_metrics import GrpcClientMetrics, GrpcServerMetrics
from grpcdemo.observability.process import register_build_info, register_runtime_collectors
from grpcdemo.persistence.timing import QueryTimer
from orderd.metrics import OrderdMetrics
from orderd.storage import sql as orderd_sql
from prometheus_client import CollectorRegistry
from userd.metrics import UserdMetrics
from userd.storage import sql as userd_sql

from loadgen.metrics import LoadgenMetrics

# What Prometheus 2.42, Alertmanager 0.25 and the blackbox exporter 0.23 expose or synthesise
# themselves. Not derivable from this repository; the live test proves each one has data.
PROMETHEUS_AND_ALERTMANAGER: Final = frozenset(
    {
        "up",
        "ALERTS",
        "probe_success",
        "probe_duration_seconds",
        "prometheus_notifications_alertmanagers_discovered",
        "prometheus_rule_evaluation_failures_total",
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
    }
)

# Sample names per metric type, for families that have no child yet (a labelled counter before its
# first `.labels()` yields no samples to read the names from).
_SUFFIXES: Final = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}


def _service_registry() -> CollectorRegistry:
    """One registry holding everything userd, orderd and the load generator register."""
    registry = CollectorRegistry()
    register_runtime_collectors(registry)
    GrpcServerMetrics(registry)
    GrpcClientMetrics(registry)
    UserdMetrics(registry)
    OrderdMetrics(registry)
    LoadgenMetrics(registry, "steady")
    for service, operations in (("userd", userd_sql.OPERATIONS), ("orderd", orderd_sql.OPERATIONS)):
        register_build_info(service, "0.0.0", registry)
        QueryTimer(service, operations, registry)
        FaultInjector(service, registry)
    return registry


def service_metric_names() -> set[str]:
    names: set[str] = set()
    for family in _service_registry().collect():
        names.update(sample.name for sample in family.samples if not sample.name.endswith("_created"))
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def exposed_metric_names() -> set[str]:
    return service_metric_names() | PROMETHEUS_AND_ALERTMANAGER
