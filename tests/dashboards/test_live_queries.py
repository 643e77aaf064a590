"""Every variable, panel and annotation query of every dashboard, run against a real Prometheus
that has scraped the services under load, with variables substituted the way Grafana substitutes
them on load. A query error fails; so does an empty result, except where emptiness is the healthy
state and says so below."""

from __future__ import annotations

import pytest

from tests.dashboards.live import (
    LivePrometheus,
    exemplar_storage_enabled,
    exemplars,
    interpolate,
    resolve_variables,
)
from tests.dashboards.model import Dashboard, DashboardQuery, queries

# Against the stack `make up` starts (or LIVE_PROMETHEUS_URL): an end-to-end test.
pytestmark = pytest.mark.e2e

# (dashboard uid, panel title or "annotation <name>", refId or "query") -> why empty is healthy.
# Not here: "grpc-client / Failed calls by method and code". The default loadgen mix sends garbage
# tokens to orderd, whose Me call to userd then ends Unauthenticated, so that panel always has data.
EMPTY_BY_DESIGN: dict[tuple[str, str, str], str] = {
    **{
        (uid, "annotation Alerts firing", "query"): "no alert but the Watchdog fires on a healthy stack"
        for uid in ("grpc-overview", "grpc-server", "grpc-client", "business", "runtime")
    },
    **{
        (uid, "Firing alerts", "A"): "the Alerts now table: nothing but the Watchdog fires on a healthy stack"
        for uid in ("grpc-server", "grpc-client", "business", "runtime")
    },
    ("grpc-server", "Server faults by method and code", "A"): (
        "server-fault codes get a series only when one is returned; healthy traffic returns none"
    ),
}

# Counters carry exemplars only on errors: a query whose errors are empty by design has none either.
# Failed client calls do happen (see above), so the client panel's exemplars are checked.
EXEMPLARS_ONLY_ON_FAILURE = {key for key in EMPTY_BY_DESIGN if key[2] == "A"}


def _all_queries(dashboards: list[Dashboard]) -> list[DashboardQuery]:
    return [query for dashboard in dashboards for query in queries(dashboard) if query.kind != "variable"]


def test_the_empty_by_design_list_names_real_queries(dashboards: list[Dashboard]) -> None:
    """A renamed panel must not leave a stale excuse behind that hides the new one."""
    keys = {query.key for query in _all_queries(dashboards)}
    assert set(EMPTY_BY_DESIGN) <= keys, sorted(set(EMPTY_BY_DESIGN) - keys)


def test_every_query_returns_data(live_prometheus: LivePrometheus, dashboards: list[Dashboard]) -> None:
    failures: list[str] = []
    ran = 0
    for dashboard in dashboards:
        # Variables first: resolving them runs every variable query and fails on an empty dropdown.
        values = resolve_variables(live_prometheus, dashboard)
        for query in queries(dashboard):
            if query.kind == "variable":
                continue
            expr = interpolate(query.expr, values)
            try:
                result = live_prometheus.query(expr)
            except Exception as error:
                failures.append(f"{query}: error {error}\n    {expr}")
                continue
            ran += 1
            if not result and query.key not in EMPTY_BY_DESIGN:
                failures.append(f"{query}: empty\n    {expr}")
    assert not failures, f"{len(failures)} of {ran} queries failed:\n" + "\n".join(failures)
    assert ran == len(_all_queries(dashboards))


def test_variables_offer_the_services(live_prometheus: LivePrometheus, dashboards: list[Dashboard]) -> None:
    """The dropdowns list what is really running: both services on the server dashboard, orderd as a
    caller on the client dashboard."""
    by_uid = {d.uid: d for d in dashboards}
    server = resolve_variables(live_prometheus, by_uid["grpc-server"])
    assert server["job"] == "(orderd|userd)"
    assert "user\\\\.v1\\\\.UserService" in server["grpc_service"]
    assert "order\\\\.v1\\\\.OrderService" in server["grpc_service"]
    assert resolve_variables(live_prometheus, by_uid["grpc-client"])["job"] == "orderd"


def test_latency_panels_carry_trace_exemplars(
    live_prometheus: LivePrometheus, dashboards: list[Dashboard]
) -> None:
    if not exemplar_storage_enabled(live_prometheus):
        pytest.skip("Prometheus runs without --enable-feature=exemplar-storage")
    checked = 0
    for dashboard in dashboards:
        values = resolve_variables(live_prometheus, dashboard)
        for query in queries(dashboard):
            if not query.exemplar or query.key in EXEMPLARS_ONLY_ON_FAILURE:
                continue
            found = exemplars(live_prometheus, interpolate(query.expr, values))
            labels = [e["labels"] for series in found for e in series["exemplars"]]
            assert labels, f"{query}: no exemplars in the last 5 minutes"
            # The label Grafana's exemplarTraceIdDestinations turns into a Jaeger link.
            assert all(len(label.get("trace_id", "")) == 32 for label in labels), f"{query}: {labels[:3]}"
            checked += 1
    assert checked
