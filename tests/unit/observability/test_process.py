from __future__ import annotations

import platform

import pytest
from grpcdemo.observability.process import metric_prefix, register_build_info, register_runtime_collectors
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.observability_echo import Scrape


def test_build_info_is_one_with_version_and_python_version() -> None:
    registry = CollectorRegistry()
    register_build_info("userd", "1.2.3", registry)
    scrape = Scrape(generate_latest(registry).decode())
    assert scrape.families["userd_build_info"] == "gauge"
    assert scrape.series("userd_build_info") == [
        {"version": "1.2.3", "python_version": platform.python_version()}
    ]
    assert scrape.value("userd_build_info", version="1.2.3", python_version=platform.python_version()) == 1


@pytest.mark.parametrize(("service", "prefix"), [("userd", "userd"), ("order-d", "order_d"), ("a.b", "a_b")])
def test_metric_prefix(service: str, prefix: str) -> None:
    assert metric_prefix(service) == prefix


@pytest.mark.parametrize("service", ["", "9lives", "bad name"])
def test_metric_prefix_rejects_invalid_names(service: str) -> None:
    with pytest.raises(ValueError, match="metric name prefix"):
        metric_prefix(service)


def test_runtime_collectors_on_a_custom_registry() -> None:
    registry = CollectorRegistry()
    register_runtime_collectors(registry)
    families = Scrape(generate_latest(registry).decode()).families
    assert "python_info" in families
    assert "python_gc_objects_collected" in families
    if platform.system() == "Linux":
        assert "process_cpu_seconds" in families
        assert "process_resident_memory_bytes" in families
