"""grafana/provisioning/: the data sources every dashboard refers to, and the dashboard provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dashboards.model import PROVISIONING_DIR, Json, load_yaml, provisioned_datasources

# Where compose mounts ./grafana/dashboards (tests/deploy checks the mount itself).
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"


def _files(kind: str) -> list[Path]:
    files = sorted((PROVISIONING_DIR / kind).glob("*.y*ml"))
    assert files, f"no grafana/provisioning/{kind}/*.yml"
    return files


@pytest.mark.parametrize("kind", ["datasources", "dashboards"])
def test_provisioning_files_are_version_1(kind: str) -> None:
    for path in _files(kind):
        document: Any = load_yaml(path)
        assert isinstance(document, dict), path.name
        assert document.get("apiVersion") == 1, path.name


def _by_uid() -> dict[str, Json]:
    sources = provisioned_datasources()
    uids = [source.get("uid") for source in sources]
    assert len(uids) == len(set(uids)), f"duplicate uids {uids}"
    names = [source.get("name") for source in sources]
    assert len(names) == len(set(names)), f"duplicate names {names}"
    return {str(source["uid"]): source for source in sources}


def test_prometheus_datasource() -> None:
    prometheus = _by_uid()["prometheus"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["access"] == "proxy"
    assert prometheus.get("isDefault") is True
    json_data = prometheus["jsonData"]
    # Must equal the scrape interval in prometheus/prometheus.yml for $__rate_interval to be right.
    scrape_interval = load_yaml(PROVISIONING_DIR.parents[1] / "prometheus" / "prometheus.yml")["global"][
        "scrape_interval"
    ]
    assert json_data["timeInterval"] == scrape_interval
    assert json_data["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "jaeger"}]


def test_exemplar_label_is_the_one_the_services_write() -> None:
    from grpcdemo.observability.trace_context import trace_exemplar
    from opentelemetry.sdk.trace import TracerProvider

    with TracerProvider().get_tracer(__name__).start_as_current_span("call"):
        exemplar = trace_exemplar()
    destinations = _by_uid()["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplar is not None
    assert set(exemplar) == {destination["name"] for destination in destinations}


def test_jaeger_and_alertmanager_datasources() -> None:
    sources = _by_uid()
    jaeger = sources["jaeger"]
    assert (jaeger["type"], jaeger["url"], jaeger["access"]) == ("jaeger", "http://jaeger:16686", "proxy")
    alertmanager = sources["alertmanager"]
    assert (alertmanager["type"], alertmanager["url"]) == ("alertmanager", "http://alertmanager:9093")
    assert alertmanager["jsonData"]["implementation"] == "prometheus"
    assert set(sources) == {"prometheus", "jaeger", "alertmanager", "loki"}


def test_loki_datasource_links_a_line_to_its_trace() -> None:
    sources = _by_uid()
    loki = sources["loki"]
    assert (loki["type"], loki["url"], loki["access"]) == ("loki", "http://loki:3100", "proxy")
    [field] = loki["jsonData"]["derivedFields"]
    # trace_id is structured metadata on each line (the OTLP log path): matched as a label, not a regex
    # over the line, and linked to the Jaeger data source by uid.
    assert (field["matcherType"], field["matcherRegex"]) == ("label", "trace_id")
    assert field["datasourceUid"] in sources and sources[field["datasourceUid"]]["type"] == "jaeger"
    # `$$` is Grafana provisioning's escape for a literal `$`: the link carries the matched value.
    assert field["url"] == "$${__value.raw}"


def test_jaeger_datasource_links_a_span_to_its_trace_s_log_lines() -> None:
    sources = _by_uid()
    links = sources["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert links["datasourceUid"] in sources and sources[links["datasourceUid"]]["type"] == "loki"
    assert links["customQuery"] is True
    assert 'trace_id="$${__trace.traceId}"' in links["query"]
    assert links["query"].startswith("{") and "service_name" in links["query"]


def test_no_secret_in_provisioning() -> None:
    for path in sorted(PROVISIONING_DIR.rglob("*.y*ml")):
        text = path.read_text(encoding="utf-8").lower()
        for word in ("secureJsonData".lower(), "password", "hooks.slack.com", "token"):
            assert word not in text, f"{path.name} mentions {word}"


def test_dashboard_provider_loads_the_mounted_folder() -> None:
    providers = [provider for path in _files("dashboards") for provider in load_yaml(path)["providers"]]
    assert len(providers) == 1
    provider = providers[0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT
    # The JSON in git is the source; a UI edit saved into Grafana's database would be lost or diverge.
    assert provider.get("allowUiUpdates") is False
