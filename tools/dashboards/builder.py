"""How a dashboard becomes Grafana JSON: targets, field config, panel options, grid layout, variables,
links and the dashboard frame (annotations, tags, refresh). tools/dashboards/content.py says what each
dashboard shows in these terms and never writes JSON structure itself.

Data sources are referenced by the fixed uids of grafana/provisioning/datasources/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

Json = dict[str, Any]

PROMETHEUS: Final[Json] = {"type": "prometheus", "uid": "prometheus"}
LOKI: Final[Json] = {"type": "loki", "uid": "loki"}
GRAFANA_BUILTIN: Final[Json] = {"type": "grafana", "uid": "-- Grafana --"}
TAG: Final = "grpc-demo"
SCHEMA_VERSION: Final = 39
GRID_WIDTH: Final = 24


# ---------------------------------------------------------------------------------------------
# Queries, variables and links


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    exemplar: bool = False
    fmt: str = "time_series"

    def target(self, ref_id: str) -> Json:
        return {
            "datasource": PROMETHEUS,
            "editorMode": "code",
            "exemplar": self.exemplar,
            "expr": self.expr,
            "format": self.fmt,
            "instant": self.instant,
            "legendFormat": self.legend,
            "range": not self.instant,
            "refId": ref_id,
        }


@dataclass(frozen=True)
class LogQuery:
    """A LogQL query for a logs panel (compose's Loki; natively there is none)."""

    expr: str

    def target(self, ref_id: str) -> Json:
        return {
            "datasource": LOKI,
            "editorMode": "code",
            "expr": self.expr,
            "queryType": "range",
            "refId": ref_id,
        }


def query_variable(
    name: str,
    label: str,
    metric: str,
    label_name: str,
    *,
    multi: bool = True,
    default: str | None = None,
) -> Json:
    """A `label_values(metric, label)` variable. Multi-value ones default to All, which Grafana
    expands to every current value; single-value ones to `default` when it exists."""
    query = f"label_values({metric}, {label_name})"
    if multi:
        current: Json = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        current = {"selected": True, "text": default, "value": default} if default else {}
    return {
        "current": current,
        "datasource": PROMETHEUS,
        "definition": query,
        "hide": 0,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": query,
        # On time-range change: a service or method that appears later shows up without a reload.
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def dashboard_link(uid: str, title: str, variables: Sequence[str] = ()) -> Json:
    """A panel link to another dashboard, keeping the time range and the given variables."""
    params = "&".join(["${__url_time_range}", *(f"${{{name}:queryparam}}" for name in variables)])
    return {"title": title, "url": f"/d/{uid}?{params}"}


# ---------------------------------------------------------------------------------------------
# Panels


def thresholds(steps: Sequence[tuple[str, float | None]]) -> Json:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in steps]}


def alert_line(value: float) -> Json:
    return thresholds([("green", None), ("red", value)])


@dataclass
class Panel:
    kind: str
    title: str
    description: str
    queries: Sequence[Query | LogQuery]
    unit: str = "short"
    thresholds: Json | None = None
    # A dashed red line at the alert threshold (timeseries only).
    threshold_line: bool = False
    stacked: bool = False
    bars: bool = False
    minimum: float | None = 0
    maximum: float | None = None
    decimals: int | None = None
    mappings: list[Json] = field(default_factory=list)
    links: list[Json] = field(default_factory=list)
    transformations: list[Json] = field(default_factory=list)
    options: Json = field(default_factory=dict)

    def render(self, panel_id: int, grid: Json) -> Json:
        defaults: Json = {"unit": self.unit, "mappings": self.mappings}
        if self.minimum is not None:
            defaults["min"] = self.minimum
        if self.maximum is not None:
            defaults["max"] = self.maximum
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        defaults["thresholds"] = self.thresholds or thresholds([("green", None)])
        defaults["color"] = {"mode": "palette-classic" if self.kind == "timeseries" else "thresholds"}
        if self.kind == "timeseries":
            defaults["custom"] = self._timeseries_custom()
        logs = all(isinstance(query, LogQuery) for query in self.queries)
        panel: Json = {
            "datasource": LOKI if logs else PROMETHEUS,
            "description": self.description,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "gridPos": grid,
            "id": panel_id,
            "links": self.links,
            "options": {**_DEFAULT_OPTIONS[self.kind], **self.options},
            "targets": [query.target(chr(ord("A") + index)) for index, query in enumerate(self.queries)],
            "title": self.title,
            "type": self.kind,
        }
        if self.transformations:
            panel["transformations"] = self.transformations
        return panel

    def _timeseries_custom(self) -> Json:
        return {
            "axisSoftMin": 0,
            "drawStyle": "bars" if self.bars else "line",
            "fillOpacity": 60 if self.bars else (25 if self.stacked else 10),
            "lineWidth": 1,
            "pointSize": 4,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if self.stacked else "none"},
            "thresholdsStyle": {"mode": "dashed" if self.threshold_line else "off"},
        }


_REDUCE_LAST: Final[Json] = {"calcs": ["lastNotNull"], "fields": "", "values": False}

_DEFAULT_OPTIONS: Final[dict[str, Json]] = {
    "timeseries": {
        "legend": {
            "calcs": ["mean", "max"],
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    },
    "stat": {
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": _REDUCE_LAST,
        "textMode": "value_and_name",
    },
    "bargauge": {
        "displayMode": "gradient",
        "minVizHeight": 16,
        "orientation": "horizontal",
        "reduceOptions": _REDUCE_LAST,
        "showUnfilled": True,
        "valueMode": "color",
    },
    "table": {"cellHeight": "sm", "footer": {"show": False}, "showHeader": True},
    "logs": {
        "dedupStrategy": "none",
        "enableLogDetails": True,
        "prettifyLogMessage": False,
        "showCommonLabels": False,
        "showLabels": True,
        "showTime": True,
        "sortOrder": "Descending",
        "wrapLogMessage": True,
    },
    "heatmap": {
        # The buckets come from Prometheus: Grafana must not re-bucket them.
        "calculate": False,
        "cellGap": 1,
        "color": {
            "exponent": 0.5,
            "fill": "dark-orange",
            "mode": "scheme",
            "scale": "exponential",
            "scheme": "Oranges",
            "steps": 64,
        },
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s"},
    },
}

UP_DOWN: Final[list[Json]] = [
    {
        "type": "value",
        "options": {"0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}},
    }
]
OFF_ON: Final[list[Json]] = [
    {
        "type": "value",
        "options": {"0": {"text": "off", "color": "green"}, "1": {"text": "ON", "color": "red"}},
    }
]


class Grid:
    """Places panels left to right in rows of GRID_WIDTH columns, numbering them from 1."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def _new_line(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0

    def row(self, title: str) -> None:
        self._new_line()
        self.panels.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y},
                "id": self._next_id(),
                "panels": [],
                "title": title,
                "type": "row",
            }
        )
        self._y += 1

    def add(self, panel: Panel, width: int, height: int) -> None:
        if self._x + width > GRID_WIDTH:
            self._new_line()
        grid = {"h": height, "w": width, "x": self._x, "y": self._y}
        self.panels.append(panel.render(self._next_id(), grid))
        self._x += width
        self._line_height = max(self._line_height, height)


def dashboard(uid: str, title: str, description: str, variables: Sequence[Json], grid: Grid) -> Json:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": GRAFANA_BUILTIN,
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": PROMETHEUS,
                    "enable": True,
                    "expr": 'ALERTS{alertstate="firing", alertname!="Watchdog"}',
                    "iconColor": "red",
                    "name": "Alerts firing",
                    "step": "15s",
                    "tagKeys": "severity,service",
                    "textFormat": "{{service}}: {{alertname}} ({{severity}})",
                    "titleFormat": "{{alertname}}",
                    "useValueForTime": False,
                },
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": False,
                "keepTime": True,
                "tags": [TAG],
                "targetBlank": False,
                "title": "gRPC demo",
                "type": "dashboards",
            }
        ],
        "liveNow": False,
        "panels": grid.panels,
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": [TAG],
        "templating": {"list": list(variables)},
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }
