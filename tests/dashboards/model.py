"""Reading the dashboard JSON and provisioning files the way Grafana does, for the tests.

Everything here works on the files in grafana/, not on tools/gen_dashboards.py, so the tests hold
for hand edits as well as generated output."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR: Final = ROOT / "grafana" / "dashboards"
PROVISIONING_DIR: Final = ROOT / "grafana" / "provisioning"
RULES_DIR: Final = ROOT / "prometheus" / "rules"

# The uids the Kubernetes demo overlay and the alerts' dashboard_url annotations rely on.
EXPECTED_UIDS: Final = frozenset({"grpc-overview", "grpc-server", "grpc-client", "business", "runtime"})

# Variables Grafana defines itself. Only those with a meaning for a Prometheus instant/range query or
# a link are accepted; the live test knows how to substitute each query one.
QUERY_BUILTINS: Final = frozenset({"__rate_interval", "__interval", "__range", "__range_s"})
LINK_BUILTINS: Final = frozenset({"__url_time_range"})

# $name, ${name}, ${name:format} and the deprecated [[name]].
VARIABLE_REFERENCE: Final = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES: Final = re.compile(r"^label_values\(\s*(?P<selector>.+)\s*,\s*(?P<label>\w+)\s*\)$", re.DOTALL)

Json = dict[str, Any]


@dataclass(frozen=True)
class Dashboard:
    path: Path
    model: Json

    @property
    def uid(self) -> str:
        return str(self.model["uid"])

    @property
    def variables(self) -> list[Json]:
        return list(self.model.get("templating", {}).get("list", []))

    def variable(self, name: str) -> Json:
        return next(v for v in self.variables if v["name"] == name)

    def panels(self) -> Iterator[Json]:
        """Every panel, rows included, and panels folded inside collapsed rows."""
        for panel in self.model.get("panels", []):
            yield panel
            yield from panel.get("panels", [])

    def data_panels(self) -> Iterator[Json]:
        return (panel for panel in self.panels() if panel.get("type") != "row")


@dataclass(frozen=True)
class DashboardQuery:
    """One PromQL expression Grafana sends: a panel target, a variable or an annotation."""

    dashboard: str
    where: str  # panel title, "variable <name>" or "annotation <name>"
    ref: str  # refId for targets, "query" for variables and annotations
    expr: str
    kind: str  # "target", "variable" or "annotation"
    exemplar: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dashboard, self.where, self.ref)

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.where} / {self.ref}"


def load_dashboards() -> list[Dashboard]:
    return [
        Dashboard(path, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    ]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def provisioned_datasources() -> list[Json]:
    sources: list[Json] = []
    for path in sorted((PROVISIONING_DIR / "datasources").glob("*.y*ml")):
        sources.extend(load_yaml(path).get("datasources", []))
    return sources


def is_loki(target: Json) -> bool:
    return bool(target.get("datasource", {}).get("type") == "loki")


def log_queries(dashboard: Dashboard) -> Iterator[tuple[str, str]]:
    """(panel title, LogQL) of every Loki target: checked on their own, never sent to Prometheus."""
    for panel in dashboard.data_panels():
        for target in panel.get("targets", []):
            if is_loki(target):
                yield str(panel.get("title")), str(target.get("expr", ""))


def queries(dashboard: Dashboard) -> Iterator[DashboardQuery]:
    """Every PromQL query: panel targets (Loki's excepted), variables and annotations."""
    for panel in dashboard.data_panels():
        for target in panel.get("targets", []):
            if is_loki(target):
                continue
            yield DashboardQuery(
                dashboard.uid,
                str(panel.get("title")),
                str(target.get("refId")),
                str(target.get("expr", "")),
                "target",
                bool(target.get("exemplar", False)),
            )
    for variable in dashboard.variables:
        if variable.get("type") == "query":
            yield DashboardQuery(
                dashboard.uid, f"variable {variable['name']}", "query", variable_query(variable), "variable"
            )
    for annotation in dashboard.model.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield DashboardQuery(
                dashboard.uid, f"annotation {annotation['name']}", "query", annotation["expr"], "annotation"
            )


def variable_query(variable: Json) -> str:
    query = variable.get("query")
    # Grafana accepts the classic string and the newer {"query": ...} object.
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def referenced_variables(text: str) -> set[str]:
    return {next(group for group in match.groups() if group) for match in VARIABLE_REFERENCE.finditer(text)}


def walk(node: Any) -> Iterator[Json]:
    """Every JSON object in `node`, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def recording_rule_names() -> set[str]:
    names: set[str] = set()
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in load_yaml(path)["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names
