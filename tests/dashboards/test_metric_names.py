"""Every name a dashboard query selects exists: a recording rule in prometheus/rules/, or a metric
the code registers (or Prometheus/Alertmanager expose). promtool proves every query parses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.dashboards.exposed_metrics import exposed_metric_names
from tests.dashboards.live import BUILTIN_VALUES, interpolate
from tests.dashboards.model import Dashboard, queries, recording_rule_names
from tests.dashboards.promql import metric_names


def _selectors(expr: str, kind: str) -> str:
    """The PromQL part of a query: the selector inside label_values(...) for a variable."""
    if kind == "variable":
        return expr.removeprefix("label_values(").rsplit(",", 1)[0]
    return expr


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (job, le) (rate(a_bucket{job=~"$job", x="y{z}"}[$__rate_interval]))', {"a_bucket"}),
        ('1 - job:errors:ratio_rate6h{job=~"$job"} / 0.001', {"job:errors:ratio_rate6h"}),
        ("(time() - b) * on (job, instance) group_left (version) (c or d)", {"b", "c", "d"}),
        ('count(ALERTS{alertstate="firing"}) or vector(0)', {"ALERTS"}),
        ("sum(rate(e[5m] offset 1h)) by (le) > 1e3 unless f", {"e", "f"}),
        ("histogram_quantile(0.95, g) >= 0", {"g"}),
    ],
)
def test_metric_name_extraction(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_selected_name_is_a_rule_or_an_exposed_metric(dashboards: list[Dashboard]) -> None:
    known = recording_rule_names() | exposed_metric_names()
    used = 0
    for dashboard in dashboards:
        for query in queries(dashboard):
            names = metric_names(_selectors(query.expr, query.kind))
            assert names, f"{query}: selects no metric"
            used += len(names)
            unknown = names - known
            assert not unknown, (
                f"{query}: {sorted(unknown)} is neither a recording rule nor an exposed metric"
            )
    assert used


def test_every_query_parses(dashboards: list[Dashboard], tmp_path: Path) -> None:
    """Each query, with variables substituted as Grafana would, as a recording rule: `promtool check
    rules` parses every expression and names the ones it rejects."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    rules = []
    for dashboard in dashboards:
        values = dict(BUILTIN_VALUES)
        values.update({variable["name"]: "(a|b\\\\.c)" for variable in dashboard.variables})
        for index, query in enumerate(queries(dashboard)):
            expr = interpolate(_selectors(query.expr, query.kind), values)
            rules.append(
                {"record": f"dashboard:query:{dashboard.uid.replace('-', '_')}_{index}", "expr": expr}
            )
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout
