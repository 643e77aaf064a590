"""What the rules and dashboards assume, checked against the running stack: every metric a rule
selects is really exposed (the blog posts this project comes from alerted on
`grpc_client_failed_requests_total`, which never existed), and exemplars are stored with trace ids
that cross the orderd -> userd hop."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests.dashboards.promql import metric_names
from tests.support.live_stack import LiveStack, http_json, wait_until

pytestmark = pytest.mark.e2e

RULES = Path(__file__).resolve().parents[2] / "prometheus" / "rules"


def rule_exprs() -> list[tuple[str, str]]:
    found = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("record") or rule["alert"], str(rule["expr"])))
    return found


def test_every_metric_a_rule_uses_is_exposed(live_prometheus: LiveStack) -> None:
    exprs = rule_exprs()
    recorded = {name for name, _ in exprs if ":" in name}
    used = set().union(*(metric_names(expr) for _, expr in exprs)) - recorded
    assert "grpc_server_handled_total" in used  # the extraction itself works
    missing = sorted(name for name in used if not live_prometheus.query(f'count({{__name__="{name}"}})'))
    assert not missing, f"rules select metrics nobody exposes: {missing}"


def exemplar_trace_ids(stack: LiveStack, selector: str) -> set[str]:
    now = time.time()
    params = urllib.parse.urlencode({"query": selector, "start": now - 600, "end": now})
    body = http_json(f"{stack.prometheus_url}/api/v1/query_exemplars?{params}", timeout=10)
    assert body["status"] == "success", body
    return {
        exemplar["labels"]["trace_id"]
        for series in body["data"]
        for exemplar in series["exemplars"]
        if "trace_id" in exemplar["labels"]
    }


def test_exemplars_are_stored_and_one_trace_spans_the_hop(live_prometheus: LiveStack) -> None:
    def shared_trace() -> bool:
        orderd = exemplar_trace_ids(live_prometheus, 'grpc_server_handling_seconds_bucket{job="orderd"}')
        client = exemplar_trace_ids(live_prometheus, 'grpc_client_handling_seconds_bucket{job="orderd"}')
        userd = exemplar_trace_ids(
            live_prometheus, 'grpc_server_handling_seconds_bucket{job="userd",grpc_method="Me"}'
        )
        return bool(orderd & userd) or bool(client & userd)

    # Exemplar storage keeps the newest per series; a shared id shows that orderd's span context
    # reached userd through the W3C traceparent header.
    wait_until(shared_trace, 60, "an exemplar trace id seen on both sides of orderd -> userd", interval=2)
    ids = exemplar_trace_ids(live_prometheus, 'grpc_server_handling_seconds_bucket{job="userd"}')
    assert all(len(trace_id) == 32 and int(trace_id, 16) for trace_id in ids)
