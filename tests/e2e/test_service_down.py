"""End to end: userd held down on purpose (what `make chaos-down SVC=userd` does) pages ServiceDown
to the critical Slack channel, inhibits userd's other alerts, and resolves once userd is back. orderd's
failing calls to it fire HighGRPCFailures in Prometheus, but one outage pages once: Alertmanager holds
it back (inhibited by ServiceDown, then ServiceRecentlyDown), during the outage and after it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.alerts import ALERT_TIMEOUT, alertmanager_alerts, arrived
from tests.support.live_stack import LiveStack, http_json, wait_until

pytestmark = pytest.mark.e2e


def test_userd_down_pages_then_resolves(live_stack: LiveStack) -> None:
    wait_until(lambda: bool(live_stack.query('up{job="userd"} == 1')), 60, "userd scraped")
    fault_at = time.monotonic()
    # What `make chaos-down SVC=userd` does: the supervisor stops userd and keeps it down.
    live_stack.hold("userd", 600)

    service_down = wait_until(
        lambda: arrived(live_stack, "ServiceDown on userd"), ALERT_TIMEOUT, "ServiceDown"
    )
    print(f"\ntime to detect: ServiceDown for userd reached Slack {service_down:.1f}s after the kill")

    def orderd_failures_inhibited() -> bool:
        for alert in alertmanager_alerts(live_stack):
            labels = alert["labels"]
            if labels.get("alertname") == "HighGRPCFailures" and labels.get("service") == "orderd":
                return alert["status"]["state"] == "suppressed" and bool(alert["status"]["inhibitedBy"])
        return False

    wait_until(orderd_failures_inhibited, ALERT_TIMEOUT, "HighGRPCFailures from orderd, inhibited")
    high_failures = time.monotonic() - fault_at
    print(f"HighGRPCFailures from orderd fired {high_failures:.1f}s after the kill, inhibited by ServiceDown")
    message = next(
        m
        for m in live_stack.slack_messages()
        if any("ServiceDown on userd" in a.get("title", "") for a in m["payload"]["attachments"])
    )
    assert message["hook"].endswith("critical")
    body = json.dumps(message["payload"])
    assert "runbook" in body.lower()
    assert "silence" in body.lower()

    # While ServiceDown fires for userd, userd's other alerts are inhibited: an alert for userd sent
    # straight to Alertmanager is suppressed and never reaches Slack. A control alert of the same
    # route for another service, sent with it, shows when the route has delivered.
    now = datetime.now(UTC)

    def synthetic_alert(service: str) -> dict[str, object]:
        return {
            "labels": {
                "alertname": "GRPCLatencyP95High",
                "service": service,
                "severity": "warning",
                "grpc_method": "Me",
            },
            "annotations": {"summary": f"synthetic, for {service}"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=5)).isoformat(),
        }

    synthetic = [synthetic_alert("userd"), synthetic_alert("control")]
    http_json(f"{live_stack.alertmanager_url}/api/v2/alerts", json.dumps(synthetic).encode(), "POST")

    def inhibited() -> bool:
        for alert in alertmanager_alerts(live_stack):
            if (
                alert["labels"].get("alertname") == "GRPCLatencyP95High"
                and alert["labels"].get("service") == "userd"
            ):
                return alert["status"]["state"] == "suppressed" and bool(alert["status"]["inhibitedBy"])
        return False

    wait_until(inhibited, 30, "synthetic userd alert inhibited by ServiceDown")
    wait_until(
        lambda: arrived(live_stack, "GRPCLatencyP95High on control"), 60, "the control alert delivered"
    )
    assert not arrived(live_stack, "GRPCLatencyP95High on userd")

    # Resolve it before userd comes back: still active when ServiceDown resolves, it would no longer be
    # inhibited and would reach Slack then, and in whichever later test is running. Never notified
    # while firing, it gets no resolved message either.
    resolved_synthetic = [{**alert, "endsAt": datetime.now(UTC).isoformat()} for alert in synthetic]
    http_json(f"{live_stack.alertmanager_url}/api/v2/alerts", json.dumps(resolved_synthetic).encode(), "POST")

    def synthetic_gone() -> bool:
        # GET /api/v2/alerts leaves out resolved alerts.
        return not any(
            alert["labels"].get("alertname") == "GRPCLatencyP95High"
            for alert in alertmanager_alerts(live_stack)
        )

    wait_until(synthetic_gone, 10, "synthetic userd alert resolved")

    restarted_at = time.monotonic()
    live_stack.release("userd")
    resolved = wait_until(
        lambda: arrived(live_stack, "ServiceDown on userd", "resolved"), ALERT_TIMEOUT, "resolved"
    )
    print(f"ServiceDown resolved message {resolved:.1f}s after userd came back")
    assert time.monotonic() - restarted_at < 2 * ALERT_TIMEOUT
    # HighGRPCFailures outlives the outage (1m window, keep_firing_for 2m): ServiceRecentlyDown keeps
    # it muted until it has resolved, so it never pages, neither during the outage nor after it.
    wait_until(
        lambda: not live_stack.query('ALERTS{alertname="HighGRPCFailures", service="orderd"}'),
        ALERT_TIMEOUT * 2,
        "HighGRPCFailures from orderd resolved in Prometheus",
    )
    assert not arrived(live_stack, "HighGRPCFailures on orderd")
