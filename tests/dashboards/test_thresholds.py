"""Every threshold a panel draws for an alert (a dashed line or a colour step) sits where that alert
fires, read from prometheus/rules/alerts.yml independently of the generator; and the generator takes
its thresholds from the rules, so a changed rule moves the line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.dashboards.model import ROOT, RULES_DIR, Dashboard, Json, load_yaml

ALERTS: dict[str, str] = {
    rule["alert"]: rule["expr"]
    for group in load_yaml(RULES_DIR / "alerts.yml")["groups"]
    for rule in group["rules"]
    if "alert" in rule
}
# `metric{...} [/ divisor] [* 60] <op> value` in an alert expression, the metric possibly in a
# `max by (...) (...)`.
COMPARISON = re.compile(
    r"(?P<metric>[a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\)?\s*(?:/\s*(?P<divisor>[\d.]+)\s*)?(?:\*\s*60\s*)?"
    r"(?P<op>>=|<=|==|>|<)\s*(?P<value>[\d.]+)"
)
# Alerts whose thresholds the dashboards are meant to draw.
DRAWN = {
    "GRPCServerErrorRateHigh", "HighGRPCFailures", "GRPCLatencyP95High", "InvalidLoginSpike",
    "OrderCreationFailing", "ErrorBudgetBurnFast", "ErrorBudgetBurnSlow",
}  # fmt: skip


def measure(metric: str) -> str:
    """A recording rule's name without its aggregation level: job:x:y and job_grpc_method:x:y are the
    same measure, so a line on a per-service graph may come from the per-method alert."""
    parts = metric.split(":")
    return ":".join(parts[1:]) if len(parts) == 3 else metric


def boundaries(op: str, limit: float) -> set[float]:
    """Where a line or colour step may sit for `series <op> limit`: at the limit, or for a whole
    number (a count, up, a number of Alertmanagers) at the first whole value past it."""
    whole = limit == int(limit)
    if op == ">" and whole:
        return {limit, limit + 1}
    if op == "==" and whole:
        return {limit, limit + 1}
    return {limit}


def where_alerts_fire(alert: str) -> list[tuple[str, set[float], float | None]]:
    return [
        (
            measure(m["metric"]),
            boundaries(m["op"], float(m["value"])),
            float(m["divisor"]) if m["divisor"] else None,
        )
        for m in COMPARISON.finditer(ALERTS[alert])
    ]


def threshold_steps(panel: Json) -> list[float]:
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    return [float(step["value"]) for step in steps if step.get("value") is not None]


def named_alerts(panel: Json) -> list[str]:
    text = f"{panel.get('title', '')} {panel.get('description', '')}"
    return [alert for alert in ALERTS if re.search(rf"\b{alert}\b", text)]


def test_every_threshold_that_names_an_alert_is_where_it_fires(dashboards: list[Dashboard]) -> None:
    drawn: set[str] = set()
    wrong = []
    for dashboard in dashboards:
        for panel in dashboard.data_panels():
            # An alert without a threshold (the Watchdog) may be named without drawing one.
            alerts = [alert for alert in named_alerts(panel) if where_alerts_fire(alert)]
            steps = threshold_steps(panel)
            if not alerts or not steps:
                continue
            exprs = " ".join(target.get("expr", "") for target in panel.get("targets", []))
            shown = {measure(m) for m in re.findall(r"[a-zA-Z_:][\w:]*", exprs)}
            for value in steps:
                matches = [
                    alert
                    for alert in alerts
                    for metric, limits, divisor in where_alerts_fire(alert)
                    if (metric in shown and value in limits) or divisor == value
                ]
                if matches:
                    drawn.update(matches)
                else:
                    wrong.append(f"{dashboard.uid} / {panel['title']}: {value} is not where {alerts} fire")
    assert not wrong, "\n".join(wrong)
    assert drawn >= DRAWN, f"no panel draws {sorted(DRAWN - drawn)}"


def test_a_changed_rule_moves_the_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    alerts = rules / "alerts.yml"
    text = alerts.read_text()
    for old, new in (
        ("job:userd_login_failures_per_attempt:ratio_rate5m > 0.8", "job:userd_login_failures_per_attempt:ratio_rate5m > 0.7"),
        ("job_grpc_method:grpc_server_handling_seconds:p95_rate1m > 0.5", "job_grpc_method:grpc_server_handling_seconds:p95_rate1m > 0.75"),
    ):  # fmt: skip
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    alerts.write_text(text)
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT / "tools")!r})
        import dashboards.thresholds
        dashboards.thresholds.RULES_DIR = Path({str(rules)!r})
        import gen_dashboards
        sys.exit(gen_dashboards.main(["--out", {str(out)!r}]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr

    def steps(uid: str, title: str) -> list[float]:
        model = json.loads((out / f"{uid}.json").read_text())
        panel = next(p for p in model["panels"] if p.get("title") == title)
        return threshold_steps(panel)

    assert steps("business", "Failed-login share (brute-force signal)") == [0.7]
    assert steps("grpc-server", "Latency p50 / p95 / p99 by method") == [0.75]
