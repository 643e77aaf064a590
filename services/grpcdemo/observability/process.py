"""Process-level series: `<svc>_build_info` and the runtime collectors."""

from __future__ import annotations

import platform
import re
from importlib import metadata

from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

_METRIC_PREFIX = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def distribution_version(distribution: str) -> str:
    """The installed version of `distribution`, for `<svc>_build_info`."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def metric_prefix(service: str) -> str:
    """`order-d` -> `order_d`; rejects names that cannot start a metric name."""
    prefix = service.replace("-", "_").replace(".", "_")
    if not _METRIC_PREFIX.fullmatch(prefix):
        raise ValueError(f"service name {service!r} cannot be used as a metric name prefix")
    return prefix


def register_build_info(service: str, version: str, registry: CollectorRegistry = REGISTRY) -> Gauge:
    """`<svc>_build_info{version,python_version} 1`: joins onto any series to show which build
    produced it (`* on(instance) group_left(version)`)."""
    gauge = Gauge(
        f"{metric_prefix(service)}_build_info",
        f"Build of the running {service}; the value is always 1.",
        ("version", "python_version"),
        registry=registry,
    )
    gauge.labels(version, platform.python_version()).set(1)
    return gauge


def register_runtime_collectors(registry: CollectorRegistry) -> None:
    """process_* (CPU, memory, fds, start time), python_gc_* and python_info for a registry other than
    the default one, which already has them (registering them there twice would raise)."""
    if registry is REGISTRY:
        return
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
