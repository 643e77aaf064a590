"""Static checks of prometheus/rules against the metric contract, the runbook and the dashboards."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.stack.support import PROMETHEUS_DIR, ROOT, RUNBOOK

REQUIRED_ALERTS = {
    "ServiceDown",
    "ServiceRecentlyDown",
    "BlackboxProbeFailed",
    "DatabaseUnavailable",
    "HighGRPCFailures",
    "GRPCServerErrorRateHigh",
    "GRPCLatencyP95High",
    "InvalidLoginSpike",
    "OrderCreationFailing",
    "ErrorBudgetBurnFast",
    "ErrorBudgetBurnSlow",
    "PrometheusRuleEvaluationFailures",
    "PrometheusNotConnectedToAlertmanager",
    "AlertmanagerNotificationsFailing",
    "Watchdog",
}
SEVERITIES = {"critical", "warning", "info"}
DASHBOARD_UIDS = {"grpc-overview", "grpc-server", "grpc-client", "business", "runtime"}
SERVICES = {"userd", "orderd", "prometheus", "alertmanager"}
FAULT_CODES = "Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded|ResourceExhausted"


def _histogram(name: str) -> set[str]:
    return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}


# What the services, Prometheus and Alertmanager expose (the contract in the task brief). A later live
# test checks these against real /metrics.
EXPOSED_METRICS = (
    {
        f"grpc_{side}_{name}"
        for side in ("server", "client")
        for name in ("started_total", "handled_total", "msg_received_total", "msg_sent_total")
    }
    | _histogram("grpc_server_handling_seconds")
    | _histogram("grpc_client_handling_seconds")
    | {
        "userd_service_login_handler_total",
        "userd_service_register_handler_total",
        "userd_service_me_handler_total",
        "orderd_service_total_orders_total",
        "orderd_service_idempotent_replays_total",
        "orderd_service_total_fetched_orders_total",
        "userd_build_info",
        "userd_fault_injection_active",
        "orderd_fault_injection_active",
    }
    | _histogram("userd_db_query_duration_seconds")
    | _histogram("orderd_db_query_duration_seconds")
    | {
        "up",
        "probe_success",
        # Prometheus's own series of its alerts (ServiceRecentlyDown reads ServiceDown's).
        "ALERTS",
        "prometheus_rule_evaluation_failures_total",
        "prometheus_notifications_alertmanagers_discovered",
        "prometheus_notifications_dropped_total",
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
    }
)

# Go spelling, as go-grpc-middleware exports them.
GRPC_CODES = {
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
    "Internal", "Unavailable", "DataLoss", "Unauthenticated",
}  # fmt: skip
RESULTS = {
    "success", "user_not_found", "invalid_password", "invalid_input", "user_exists", "invalid_token",
    "missing_token", "failed", "unauthenticated", "not_found", "throttled", "overloaded",
}  # fmt: skip

# Label values the rules may match on, per label.
LABEL_VALUES = {
    "job": {"userd", "orderd", "loadgen", "prometheus", "alertmanager", "blackbox"},
    "grpc_service": {"user.v1.UserService", "order.v1.OrderService"},
    "grpc_method": {"Register", "Login", "Me", "CreateOrder", "GetOrder", "ListOrders"},
    "grpc_code": GRPC_CODES,
    "result": RESULTS,
}

INFRASTRUCTURE_SERVICES = "grpc[.]health[.]v1[.]Health|grpc[.]reflection[.].*"

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "inf", "nan", "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev",
    "stdvar", "count_values", "group",
}  # fmt: skip


def load_rules(name: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS_DIR / "rules" / name).read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


ALERTS = {rule["alert"]: rule for rule in load_rules("alerts.yml")}
RECORDS = {rule["record"]: rule for rule in load_rules("recording.yml")}
ALL_RULES = list(ALERTS.values()) + list(RECORDS.values())


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords, label names
    inside braces or grouping clauses, durations or numbers."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # range and subquery durations
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def matchers(expr: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) for every label matcher in the expression."""
    found = []
    for block in re.findall(r"\{([^}]*)\}", expr):
        found += re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', block)
    return found


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (job, le) (rate(grpc_server_handling_seconds_bucket{job="x", le="0.5"}[5m])) '
        "/ ignoring(le) group_left up > 0.5 and on(job) vector(1) or job:foo:rate1m offset 1m"
    )
    assert metric_names(expr) == {"grpc_server_handling_seconds_bucket", "up", "job:foo:rate1m"}


def test_every_required_alert_exists() -> None:
    assert set(ALERTS) == REQUIRED_ALERTS


@pytest.mark.parametrize("rule", ALL_RULES, ids=[r.get("alert") or r["record"] for r in ALL_RULES])
def test_rules_use_only_exposed_or_recorded_metrics(rule: dict[str, Any]) -> None:
    unknown = metric_names(rule["expr"]) - EXPOSED_METRICS - set(RECORDS)
    assert not unknown, f"metrics outside the contract: {sorted(unknown)}"


@pytest.mark.parametrize("rule", ALL_RULES, ids=[r.get("alert") or r["record"] for r in ALL_RULES])
def test_rules_match_only_contract_label_values(rule: dict[str, Any]) -> None:
    for label, operator, value in matchers(rule["expr"]):
        allowed = LABEL_VALUES.get(label)
        if allowed is None:
            continue
        values = value.split("|") if operator in ("=~", "!~") else [value]
        if label == "grpc_service" and operator == "!~":
            # The one exclusion: gRPC's own health and reflection services, whatever else exists.
            assert value == INFRASTRUCTURE_SERVICES, f"{label}{operator}{value!r}"
            continue
        assert set(values) <= allowed, f"{label}{operator}{value!r}"
        if label == "grpc_code" and operator == "=~" and "OK" not in values:
            # One definition of "server fault" everywhere; a copy that drifts would disagree silently.
            assert value == FAULT_CODES


def test_recording_rules_follow_the_naming_convention() -> None:
    for name in RECORDS:
        level, metric, operations = name.split(":")
        assert level and metric and operations, name
        # The level names the labels kept: job (and service, method, code...) or instance (per replica).
        assert level.startswith(("job", "instance")), name


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS))
def test_alert_labels(name: str) -> None:
    labels = ALERTS[name]["labels"]
    if name == "Watchdog":
        assert labels == {"severity": "none", "service": "prometheus"}
    elif name == "ServiceRecentlyDown":
        # An inhibition source that notifies no one; its `service` is the one that was down.
        assert labels == {"severity": "none"}
    else:
        assert labels["severity"] in SEVERITIES
        # Every other alert takes `service` from the scraped series (see the aggregation test below).
        assert "service" not in labels


@pytest.mark.parametrize("rule", ALL_RULES, ids=[r.get("alert") or r["record"] for r in ALL_RULES])
def test_aggregations_keep_job_and_service(rule: dict[str, Any]) -> None:
    assert "without" not in rule["expr"]
    for grouping in re.findall(r"\bby \(([^)]*)\)", rule["expr"]):
        labels = {label.strip() for label in grouping.split(",")}
        assert {"job", "service"} <= labels, grouping


def runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS))
def test_alert_annotations(name: str) -> None:
    annotations = ALERTS[name]["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert annotations["summary"].strip()
    if name != "Watchdog":
        assert re.search(r'\{\{ \$value \| (humanize\w*|printf "[^"]+") \}\}', annotations["description"]), (
            "no live value"
        )

    # Served by the Slack sink from docs/runbook.md, natively and in compose (tests/e2e follows it).
    runbook = re.fullmatch(r"http://127\.0\.0\.1:9095/runbook#([\w-]+)", annotations["runbook_url"])
    assert runbook, annotations["runbook_url"]
    assert runbook.group(1) == name.lower()
    assert runbook.group(1) in runbook_anchors()

    dashboard = re.fullmatch(r"http://127\.0\.0\.1:3000/d/([\w-]+)(?:\?(.*))?", annotations["dashboard_url"])
    assert dashboard, annotations["dashboard_url"]
    assert dashboard.group(1) in DASHBOARD_UIDS
    # Each variable the link sets exists on that dashboard and is filled from a label the alert keeps.
    model = json.loads((ROOT / "grafana" / "dashboards" / f"{dashboard.group(1)}.json").read_text())
    variables = {v["name"] for v in model["templating"]["list"]}
    for pair in filter(None, (dashboard.group(2) or "").split("&")):
        name, _, value = pair.partition("=")
        assert name.removeprefix("var-") in variables, pair
        label = re.fullmatch(r"\{\{ \$labels\.(\w+) \}\}", value)
        assert label, pair


def test_runbook_sections_describe_meaning_impact_diagnosis_mitigation() -> None:
    sections = re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)[1:]
    by_name = {section.split("\n", 1)[0].strip(): section for section in sections}
    assert set(by_name) == REQUIRED_ALERTS
    for name, section in by_name.items():
        for part in ("**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Mitigation.**"):
            assert part in section, f"{name}: {part}"


def rule_tests() -> list[dict[str, Any]]:
    return [
        case
        for path in sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS - {"Watchdog"}))
def test_every_alert_is_unit_tested_firing_and_silent(name: str) -> None:
    cases = [case for case in rule_tests() if case["alertname"] == name]
    firing = [case for case in cases if case["exp_alerts"]]
    silent = [case for case in cases if not case["exp_alerts"]]
    assert firing, f"no promtool test makes {name} fire"
    assert len(silent) >= 2, f"{name} needs silent cases (below threshold, normal load)"
    for case in firing:
        for alert in case["exp_alerts"]:
            assert alert["exp_labels"]["severity"] == ALERTS[name]["labels"]["severity"]
            assert alert["exp_labels"]["service"] in SERVICES
            assert set(alert["exp_annotations"]) == set(ALERTS[name]["annotations"])


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for amount, unit in re.findall(r"(\d+)(ms|s|m|h)", duration):
        total += int(amount) * units[unit]
    return total


def test_service_down_reaches_slack_within_a_minute() -> None:
    """Worst case from the process dying to the Slack POST: the next scrape fails, the next rule
    evaluation sees it, `for:` passes, then the critical route's group_wait."""
    prometheus = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["global"]
    alertmanager = yaml.safe_load((PROMETHEUS_DIR.parent / "alertmanager" / "alertmanager.yml").read_text())
    [critical] = [r for r in alertmanager["route"]["routes"] if r["matchers"] == ['severity="critical"']]
    worst = (
        _seconds(prometheus["scrape_interval"])
        + _seconds(prometheus["evaluation_interval"])
        + _seconds(ALERTS["ServiceDown"]["for"])
        + _seconds(critical.get("group_wait", alertmanager["route"]["group_wait"]))
    )
    assert worst <= 45


def _table_rows(path: Any, header: str) -> dict[str, list[str]]:
    """The rows of the markdown table under `header`, keyed by the alert name in their first cell."""
    text = path.read_text()
    table = text[text.index(header) :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return rows


def test_the_prometheus_readme_alert_table_is_the_rules() -> None:
    """One row per alert, with the rule's severity and its `for:` in the text (the table is read by
    people choosing what to copy; a row that drifts from the rule misleads them)."""
    rows = _table_rows(PROMETHEUS_DIR / "README.md", "| Alert | Severity | Fires when | Dashboard |")
    assert set(rows) == set(ALERTS)
    for name, (_, severity, fires_when, dashboard) in rows.items():
        rule = ALERTS[name]
        assert severity == rule["labels"]["severity"], name
        if "for" in rule:
            assert f"for {rule['for']}" in fires_when, f"{name}: the text does not say `for {rule['for']}`"
        assert dashboard in rule["annotations"]["dashboard_url"], name


def test_the_readme_alert_table_names_every_alert() -> None:
    rows = _table_rows(ROOT / "README.md", "| alert | sets it off | does not |")
    assert set(rows) == set(ALERTS)
