"""Talking to a live Prometheus the way Grafana's Prometheus data source does: label values for
template variables, instant queries for panels, and exemplar queries."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from tests.dashboards.model import LABEL_VALUES, VARIABLE_REFERENCE, Dashboard, Json, variable_query

# What Grafana would substitute for a 30-minute dashboard (the dashboards' default time range) on a
# 5s scrape interval. $__rate_interval is 1m rather than Grafana's 20s minimum so that rates are over
# the same window as the 1m recording rules, which the stack has had time to fill.
BUILTIN_VALUES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "30m",
    "__range_s": "1800",
}
LOOKBACK_SECONDS = 30 * 60


class LivePrometheus(Protocol):
    """The interface of tests/support/live_stack.py's `live_prometheus` fixture."""

    url: str

    def query(self, expr: str) -> list[dict[str, Any]]: ...


class PrometheusApi:
    """A LivePrometheus for an already running server (LIVE_PROMETHEUS_URL)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = get_api(self.url, "/api/v1/query", {"query": expr})
        result: list[dict[str, Any]] = data["result"]
        return result


def get_api(base_url: str, path: str, params: dict[str, str] | list[tuple[str, str]]) -> Any:
    """GET a Prometheus API endpoint and return `data`; raises with Prometheus' error message."""
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}")
        raise AssertionError(f"{path}: HTTP {error.code}: {body.get('error', body)}") from error
    if body.get("status") != "success":
        raise AssertionError(f"{path}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def label_values(prometheus: LivePrometheus, selector: str, label: str) -> list[str]:
    """What `label_values(selector, label)` offers in the dropdown, over the last 30 minutes."""
    now = time.time()
    params = [("match[]", selector), ("start", str(now - LOOKBACK_SECONDS)), ("end", str(now))]
    values: list[str] = get_api(prometheus.url, f"/api/v1/label/{label}/values", params)
    return sorted(values)


def regex_escape(value: str) -> str:
    """Grafana's prometheusSpecialRegexEscape: escaped twice, once for the regex and once for the
    PromQL string literal it ends up in."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda match: "\\\\" + match.group(), value)


def regular_escape(value: str) -> str:
    """Grafana's prometheusRegularEscape, used for single-value variables."""
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def interpolate(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no value for ${name} in {text!r}")
        return values[name]

    return VARIABLE_REFERENCE.sub(replace, text)


def resolve_variables(prometheus: LivePrometheus, dashboard: Dashboard) -> dict[str, str]:
    """Each template variable's value as Grafana would interpolate it on load: All for multi-value
    variables, otherwise the saved default if the live data offers it, else the first value. A
    variable whose dropdown would be empty is an error."""
    values = dict(BUILTIN_VALUES)
    for variable in dashboard.variables:
        match = LABEL_VALUES.match(variable_query(variable))
        assert match, f"{dashboard.uid}: variable {variable['name']} is not label_values(selector, label)"
        selector = interpolate(match["selector"], values)
        options = label_values(prometheus, selector, match["label"])
        assert options, f"{dashboard.uid}: variable {variable['name']} has no values: {selector}"
        if variable.get("multi") or variable.get("includeAll"):
            escaped = [regex_escape(option) for option in options]
            values[variable["name"]] = escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
        else:
            default = (variable.get("current") or {}).get("value")
            values[variable["name"]] = regular_escape(default if default in options else options[0])
    return values


def exemplars(prometheus: LivePrometheus, expr: str, seconds: float = 300) -> list[Json]:
    now = time.time()
    params = {"query": expr, "start": str(now - seconds), "end": str(now)}
    found: list[Json] = get_api(prometheus.url, "/api/v1/query_exemplars", params)
    return found


def exemplar_storage_enabled(prometheus: LivePrometheus) -> bool:
    flags = get_api(prometheus.url, "/api/v1/status/flags", {})
    return "exemplar-storage" in str(flags.get("enable-feature", ""))
