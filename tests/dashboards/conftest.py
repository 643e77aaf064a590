"""Fixtures for the dashboard tests.

`live_prometheus` comes from tests/support/live_stack.py: a real Prometheus that has scraped userd,
orderd and the rest of the stack under load. Set LIVE_PROMETHEUS_URL (e.g. http://127.0.0.1:9090
while `make up` runs) to run the live checks against an already running Prometheus instead."""

from __future__ import annotations

import os

import pytest

from tests.dashboards.live import LivePrometheus, PrometheusApi
from tests.dashboards.model import Dashboard, load_dashboards


@pytest.fixture(scope="session")
def dashboards() -> list[Dashboard]:
    found = load_dashboards()
    assert found, "no grafana/dashboards/*.json"
    return found


_LIVE_URL = os.environ.get("LIVE_PROMETHEUS_URL", "").strip()

if _LIVE_URL:

    @pytest.fixture(scope="session")
    def live_prometheus() -> LivePrometheus:
        return PrometheusApi(_LIVE_URL)

else:
    # Both names: live_prometheus depends on the live_stack fixture.
    from tests.support.live_stack import live_prometheus, live_stack  # noqa: F401
