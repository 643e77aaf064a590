"""The alert thresholds and SLO figures the dashboards draw, read from prometheus/rules/alerts.yml
itself, so a reader sees how close a graph is to paging and no number is typed twice: change a rule
and the next `make dashboards` moves its line (tests/dashboards/test_thresholds.py fails until then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import yaml

RULES_DIR: Final = Path(__file__).resolve().parents[2] / "prometheus" / "rules"

# The same set recording.yml calls "errors": faults of the server, not of the caller.
SERVER_FAULT_CODES: Final = "Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded|ResourceExhausted"
# What recording.yml's server rules (the SLI) leave out: health checks and reflection are not user
# traffic. Needed only where a panel reads the raw server series in the rules' stead.
INFRASTRUCTURE_GRPC_SERVICES: Final = "grpc[.]health[.]v1[.]Health|grpc[.]reflection[.].*"
SLO_PERIOD: Final = "30d"  # the window the error budget is granted over: no rule states it


class RuleThresholdError(LookupError):
    pass


@dataclass(frozen=True)
class AlertThreshold:
    """Where `alert` fires on a graph of `series`: above `value`. `divisor` is what the rule divides
    the series by before comparing (the SLO's error budget for the burn-rate alerts), else 1."""

    alert: str
    series: str
    value: float
    divisor: float = 1.0


@cache
def _alert_expressions(rules_dir: Path) -> dict[str, str]:
    document = yaml.safe_load((rules_dir / "alerts.yml").read_text())
    return {
        rule["alert"]: rule["expr"]
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def alert_threshold(alert: str, series: str, rules_dir: Path | None = None) -> AlertThreshold:
    """The number `alert` compares `series` with: `series{...} [/ d] > n` (or >=) in its expression."""
    expressions = _alert_expressions(rules_dir or RULES_DIR)
    if alert not in expressions:
        raise RuleThresholdError(f"no alert {alert} in alerts.yml")
    pattern = (
        rf"(?<![\w:]){re.escape(series)}(?:\{{[^}}]*\}})?\s*"
        r"(?:/\s*(?P<divisor>[\d.]+)\s*)?(?:\*\s*60\s*)?>=?\s*(?P<value>[\d.]+)"
    )
    found = re.findall(pattern, expressions[alert])
    if len(found) != 1:
        raise RuleThresholdError(f"{alert} compares {series} with a number {len(found)} times, not once")
    divisor, value = found[0]
    return AlertThreshold(alert, series, float(value), float(divisor) if divisor else 1.0)


def error_ratio() -> AlertThreshold:
    return alert_threshold(
        "GRPCServerErrorRateHigh", "job_grpc_method:grpc_server_errors_per_request:ratio_rate1m"
    )


def client_error_ratio() -> AlertThreshold:
    return alert_threshold("HighGRPCFailures", "job_grpc_service:grpc_client_errors_per_request:ratio_rate1m")


def client_failures_per_minute() -> AlertThreshold:
    """Per minute: the rule compares the per-second rate times 60."""
    return alert_threshold("HighGRPCFailures", "job_grpc_service:grpc_client_errors:rate1m")


def p95_latency() -> AlertThreshold:
    return alert_threshold("GRPCLatencyP95High", "job_grpc_method:grpc_server_handling_seconds:p95_rate1m")


def login_failure_share() -> AlertThreshold:
    return alert_threshold("InvalidLoginSpike", "job:userd_login_failures_per_attempt:ratio_rate5m")


def login_throttled() -> AlertThreshold:
    return alert_threshold("InvalidLoginSpike", "job:userd_login_throttled:increase5m")


def order_failure_ratio() -> AlertThreshold:
    return alert_threshold("OrderCreationFailing", "job:orderd_orders_failed_per_attempt:ratio_rate1m")


def fast_burn() -> AlertThreshold:
    return alert_threshold("ErrorBudgetBurnFast", "job:grpc_server_errors_per_request:ratio_rate1h")


def slow_burn() -> AlertThreshold:
    return alert_threshold("ErrorBudgetBurnSlow", "job:grpc_server_errors_per_request:ratio_rate6h")


def error_budget() -> float:
    """The SLO's error budget (0.001 for 99.9%): what both burn-rate alerts divide by."""
    budgets = {fast_burn().divisor, slow_burn().divisor}
    if len(budgets) != 1:
        raise RuleThresholdError(f"the burn-rate alerts disagree on the error budget: {sorted(budgets)}")
    return budgets.pop()
