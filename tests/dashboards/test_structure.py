"""The dashboard JSON is well formed for Grafana (no I/O beyond reading the files): uids, ids, grid,
data source references, variables, descriptions, links, exemplars."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import gen_dashboards
import pytest
import yaml

from tests.dashboards.model import (
    DASHBOARDS_DIR,
    EXPECTED_UIDS,
    LABEL_VALUES,
    LINK_BUILTINS,
    QUERY_BUILTINS,
    ROOT,
    RULES_DIR,
    Dashboard,
    Json,
    load_yaml,
    log_queries,
    provisioned_datasources,
    queries,
    referenced_variables,
    variable_query,
    walk,
)

GRID_WIDTH = 24
# Grafana's own annotation source, present in every dashboard; not a provisioned data source.
GRAFANA_BUILTIN_DATASOURCE = "-- Grafana --"
PANEL_TYPES = {"row", "timeseries", "stat", "heatmap", "table", "bargauge", "logs"}
DASHBOARD_LINK = re.compile(r"^/d/([\w-]+)(?:[/?#]|$)")


def _rectangles_overlap(a: Json, b: Json) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def _links(dashboard: Dashboard) -> Iterator[tuple[str, str]]:
    """(where, url) of every panel link and data link."""
    for panel in dashboard.panels():
        for link in panel.get("links", []):
            yield panel.get("title", "?"), str(link.get("url", ""))
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        for link in defaults.get("links", []):
            yield panel.get("title", "?"), str(link.get("url", ""))


def test_the_expected_dashboards_exist_with_their_fixed_uids(dashboards: list[Dashboard]) -> None:
    uids = [d.uid for d in dashboards]
    assert len(uids) == len(set(uids)), f"duplicate uids: {uids}"
    assert set(uids) == EXPECTED_UIDS
    for dashboard in dashboards:
        # The Kubernetes overlay lists the files by uid.
        assert dashboard.path.name == f"{dashboard.uid}.json"
        assert dashboard.model.get("id") is None, "provisioned dashboards must not carry a database id"
        assert dashboard.model["title"] and dashboard.model.get("description")
        assert 36 <= dashboard.model["schemaVersion"] <= 41


def test_panel_ids_are_unique_within_each_dashboard(dashboards: list[Dashboard]) -> None:
    for dashboard in dashboards:
        ids = Counter(panel.get("id") for panel in dashboard.panels())
        assert None not in ids, f"{dashboard.uid}: a panel without id"
        assert [i for i, n in ids.items() if n > 1] == [], dashboard.uid


def test_panels_sit_inside_the_grid_without_overlapping(dashboards: list[Dashboard]) -> None:
    for dashboard in dashboards:
        placed: list[tuple[str, Json]] = []
        for panel in dashboard.panels():
            grid = panel["gridPos"]
            where = f"{dashboard.uid} / {panel.get('title')}"
            assert {"x", "y", "w", "h"} <= grid.keys(), where
            assert grid["w"] > 0 and grid["h"] > 0, where
            assert grid["x"] >= 0 and grid["y"] >= 0, where
            assert grid["x"] + grid["w"] <= GRID_WIDTH, where
            for other_title, other in placed:
                assert not _rectangles_overlap(grid, other), f"{where} overlaps {other_title}"
            placed.append((str(panel.get("title")), grid))


def test_every_panel_has_a_known_type_a_description_and_queries(dashboards: list[Dashboard]) -> None:
    for dashboard in dashboards:
        for panel in dashboard.panels():
            where = f"{dashboard.uid} / {panel.get('title')}"
            assert panel.get("type") in PANEL_TYPES, where
            assert panel.get("title"), where
            if panel["type"] == "row":
                continue
            assert len(str(panel.get("description", ""))) >= 30, f"{where}: no useful description"
            targets = panel.get("targets", [])
            assert targets, f"{where}: no targets"
            ref_ids = [target.get("refId") for target in targets]
            assert len(set(ref_ids)) == len(ref_ids), f"{where}: duplicate refIds"
            for target in targets:
                assert str(target.get("expr", "")).strip(), (
                    f"{where}: target {target.get('refId')} has no expr"
                )


def test_every_datasource_reference_is_provisioned_with_the_same_type(dashboards: list[Dashboard]) -> None:
    provisioned = {source["uid"]: source["type"] for source in provisioned_datasources()}
    for dashboard in dashboards:
        for node in walk(dashboard.model):
            source = node.get("datasource")
            if source is None:
                continue
            assert isinstance(source, dict), f"{dashboard.uid}: datasource by name ({source!r}), use a uid"
            if source.get("uid") == GRAFANA_BUILTIN_DATASOURCE:
                continue
            assert source.get("uid") in provisioned, f"{dashboard.uid}: unknown datasource {source}"
            assert source.get("type") == provisioned[source["uid"]], f"{dashboard.uid}: {source}"


def test_variables_are_label_values_queries_on_the_prometheus_datasource(dashboards: list[Dashboard]) -> None:
    for dashboard in dashboards:
        names = [variable["name"] for variable in dashboard.variables]
        assert len(names) == len(set(names)), dashboard.uid
        for variable in dashboard.variables:
            where = f"{dashboard.uid} / variable {variable['name']}"
            assert variable["type"] == "query", where
            assert variable["datasource"] == {"type": "prometheus", "uid": "prometheus"}, where
            query = variable_query(variable)
            assert LABEL_VALUES.match(query), f"{where}: {query!r} is not label_values(selector, label)"
            assert variable.get("definition") == query, where
            assert variable.get("refresh") in (1, 2), f"{where}: never refreshed, values would go stale"


def _defined_before(dashboard: Dashboard) -> Iterator[tuple[Json, set[str]]]:
    seen: set[str] = set()
    for variable in dashboard.variables:
        yield variable, set(seen)
        seen.add(variable["name"])


def test_every_variable_used_is_defined_or_a_builtin(dashboards: list[Dashboard]) -> None:
    for dashboard in dashboards:
        defined = {variable["name"] for variable in dashboard.variables}
        for query in queries(dashboard):
            if query.kind == "variable":
                continue
            unknown = referenced_variables(query.expr) - defined - QUERY_BUILTINS
            assert not unknown, f"{query}: undefined variables {sorted(unknown)}"
        # A variable may only use those defined before it: Grafana resolves them in order.
        for variable, earlier in _defined_before(dashboard):
            unknown = referenced_variables(variable_query(variable)) - earlier
            assert not unknown, f"{dashboard.uid} / variable {variable['name']}: uses {sorted(unknown)}"
        for where, url in _links(dashboard):
            unknown = referenced_variables(url) - defined - LINK_BUILTINS
            assert not unknown, f"{dashboard.uid} / {where}: link uses {sorted(unknown)}"


def test_multi_value_variables_appear_only_in_regex_matchers(dashboards: list[Dashboard]) -> None:
    """Grafana expands a multi-value or All selection to `(a|b)`, which only a `=~` or `!~` matcher reads
    as alternatives; after `=` it would match nothing."""
    for dashboard in dashboards:
        multi = {v["name"] for v in dashboard.variables if v.get("multi") or v.get("includeAll")}
        for query in queries(dashboard):
            for name in multi:
                uses = len(re.findall(rf"\${name}\b", query.expr))
                in_regex = len(re.findall(rf"[=!]~\s*\"[^\"]*\${name}\b", query.expr))
                assert uses == in_regex, f"{query}: ${name} used outside a regex matcher"


def test_raw_rates_use_rate_interval_except_windows_shared_with_alerts(dashboards: list[Dashboard]) -> None:
    """A fixed window only where the panel shows what an alert evaluates (its window must match) or
    the SLO period the error budget is granted over; otherwise $__rate_interval, which follows the
    zoom and never drops below 4 scrapes."""
    fixed_windows_allowed = {"1m", "5m", gen_dashboards.SLO_PERIOD}
    for dashboard in dashboards:
        for query in queries(dashboard):
            # Brackets inside label matchers ("grpc[.]health") are regex classes, not range windows.
            outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query.expr)
            for window in re.findall(r"\[([^\]]+)\]", outside_strings):
                assert window in ("$__rate_interval", "$__range") or window in fixed_windows_allowed, (
                    f"{query}: range [{window}]"
                )


def test_exemplars_are_asked_only_of_raw_series(dashboards: list[Dashboard]) -> None:
    """Prometheus keeps exemplars on scraped series: a recording rule (name with a colon) has none, so
    exemplar: true there would show nothing."""
    exemplar_queries = [q for d in dashboards for q in queries(d) if q.exemplar]
    assert exemplar_queries, "no panel shows exemplars"
    for query in exemplar_queries:
        assert re.search(r"\b(grpc_(server|client)_(handling_seconds_bucket|handled_total))\b", query.expr), (
            str(query)
        )
        assert ":" not in re.sub(r"\[[^\]]*\]|\"[^\"]*\"", "", query.expr), (
            f"{query}: exemplars on a recording rule"
        )


def test_latency_panels_show_exemplars(dashboards: list[Dashboard]) -> None:
    by_uid = {d.uid: d for d in dashboards}
    for uid in ("grpc-server", "grpc-client"):
        heatmaps = [p for p in by_uid[uid].data_panels() if p["type"] == "heatmap"]
        assert heatmaps, f"{uid}: no latency heatmap"
        for panel in heatmaps:
            assert all(t.get("exemplar") for t in panel["targets"]), f"{uid} / {panel['title']}"
            assert all(t.get("format") == "heatmap" for t in panel["targets"]), f"{uid} / {panel['title']}"
            assert "_bucket" in panel["targets"][0]["expr"]
            assert panel["options"]["calculate"] is False, "Prometheus buckets must not be re-bucketed"


def test_server_fault_codes_match_the_recording_rules(dashboards: list[Dashboard]) -> None:
    rules_text = (RULES_DIR / "recording.yml").read_text(encoding="utf-8")
    rule_sets = set(re.findall(r'grpc_code=~"([^"]+)"', rules_text))
    assert len(rule_sets) == 1, rule_sets
    for dashboard in dashboards:
        for query in queries(dashboard):
            for codes in re.findall(r'grpc_code=~"([^"]+)"', query.expr):
                assert codes in rule_sets, f"{query}: a different set of server-fault codes: {codes}"


def test_links_point_at_existing_dashboards(dashboards: list[Dashboard]) -> None:
    uids = {d.uid for d in dashboards}
    for dashboard in dashboards:
        links = dashboard.model.get("links", [])
        assert any(link.get("type") == "dashboards" and link.get("tags") for link in links), (
            f"{dashboard.uid}: no link to the other dashboards"
        )
        for link in links:
            if link.get("type") == "dashboards":
                for tag in link["tags"]:
                    tagged = [d.uid for d in dashboards if tag in d.model.get("tags", [])]
                    assert set(tagged) == uids, f"{dashboard.uid}: tag {tag} links only {tagged}"
        for where, url in _links(dashboard):
            match = DASHBOARD_LINK.match(url)
            assert match, f"{dashboard.uid} / {where}: link {url} is not a /d/<uid> link"
            assert match.group(1) in uids, f"{dashboard.uid} / {where}: no dashboard {match.group(1)}"


def test_every_alert_dashboard_url_names_an_existing_dashboard(dashboards: list[Dashboard]) -> None:
    uids = {d.uid for d in dashboards}
    seen = 0
    for group in load_yaml(RULES_DIR / "alerts.yml")["groups"]:
        for rule in group["rules"]:
            url = rule.get("annotations", {}).get("dashboard_url")
            if url is None:
                continue
            seen += 1
            uid = re.search(r"/d/([\w-]+)", url)
            assert uid and uid.group(1) in uids, f"{rule['alert']}: {url}"
    assert seen


@pytest.mark.parametrize(
    ("uid", "metric"),
    [
        ("grpc-overview", "ALERTS"),
        ("grpc-overview", "job:grpc_server_errors_per_request:ratio_rate6h"),
        ("grpc-overview", "job:grpc_server_errors_per_request:ratio_rate1h"),
        ("grpc-overview", "job:grpc_server_errors_per_request:ratio_rate30m"),
        ("grpc-overview", "job:grpc_server_errors_per_request:ratio_rate5m"),
        ("grpc-overview", "job:grpc_server_handling_seconds:p95_rate1m"),
        ("grpc-overview", "up"),
        ("grpc-server", "grpc_server_handling_seconds_bucket"),
        ("grpc-server", "grpc_server_in_flight_requests"),
        ("grpc-server", "job_grpc_method:grpc_server_handling_seconds:p99_rate1m"),
        ("grpc-client", "job_grpc_service:grpc_client_errors_per_request:ratio_rate1m"),
        ("grpc-client", "job_grpc_method:grpc_client_handling_seconds:p95_rate1m"),
        ("business", "userd_service_login_handler_total"),
        ("business", "userd_service_register_handler_total"),
        ("business", "userd_service_me_handler_total"),
        ("business", "orderd_service_total_orders_total"),
        ("business", "orderd_service_total_fetched_orders_total"),
        ("business", "orderd_service_idempotent_replays_total"),
        ("runtime", "process_cpu_seconds_total"),
        ("runtime", "process_resident_memory_bytes"),
        ("runtime", "process_open_fds"),
        ("runtime", "python_gc_collections_total"),
        ("runtime", "userd_db_query_duration_seconds_bucket"),
        ("runtime", "orderd_db_query_duration_seconds_bucket"),
        ("runtime", "userd_fault_injection_active"),
        ("runtime", "orderd_fault_injection_active"),
    ],
)
def test_each_dashboard_covers_its_brief(dashboards: list[Dashboard], uid: str, metric: str) -> None:
    dashboard = next(d for d in dashboards if d.uid == uid)
    assert any(re.search(rf"(?<![\w:]){re.escape(metric)}(?![\w:])", q.expr) for q in queries(dashboard)), (
        f"{uid} shows nothing from {metric}"
    )


def test_only_dashboard_json_files_in_the_provisioned_folder() -> None:
    # Grafana's file provider loads every *.json it finds; anything else there is dead weight.
    others = [p.name for p in DASHBOARDS_DIR.iterdir() if p.suffix != ".json"]
    assert others == []


def test_the_logs_panel_reads_loki_by_bounded_labels_and_levels(dashboards: list[Dashboard]) -> None:
    """LogQL cannot run here (no Loki): what can be checked is checked. The stream selector uses only
    Loki's one index label for these services (service_name, from service.name; loki/loki.yml) bound
    to the dashboard's service variable, the filter keeps warnings and errors, and Grafana shows the
    newest first."""
    overview = next(d for d in dashboards if d.uid == "grpc-overview")
    [(title, expr)] = list(log_queries(overview))
    selector = re.fullmatch(r"\{(?P<matchers>[^}]*)\}(?P<pipeline>.*)", expr)
    assert selector, expr
    labels = {m.split("=")[0].strip().rstrip("!~") for m in selector["matchers"].split(",")}
    assert labels == {"service_name"}
    assert "$job" in selector["matchers"]
    assert {v["name"] for v in overview.variables} >= referenced_variables(expr)
    assert re.search(r'\| detected_level=~"[^"]*warn[^"]*error', selector["pipeline"])
    panel = next(p for p in overview.data_panels() if p["title"] == title)
    assert panel["type"] == "logs" and panel["options"]["sortOrder"] == "Descending"
    assert panel["datasource"]["uid"] in {s["uid"] for s in provisioned_datasources()}
    loki = yaml.safe_load((ROOT / "loki" / "loki.yml").read_text(encoding="utf-8"))
    indexed = loki["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"]
    assert [c["attributes"] for c in indexed if c["action"] == "index_label"] == [["service.name"]]


def test_every_dashboard_shows_what_pages_now(dashboards: list[Dashboard]) -> None:
    for dashboard in dashboards:
        firing = [
            panel
            for panel in dashboard.data_panels()
            if any(
                'ALERTS{alertstate="firing"' in target.get("expr", "") for target in panel.get("targets", [])
            )
            and panel["type"] == "table"
        ]
        assert firing, f"{dashboard.uid} has no table of firing alerts"
        assert firing[0]["gridPos"]["y"] <= 1 or dashboard.uid == "grpc-overview", dashboard.uid
