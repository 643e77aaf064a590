"""End to end on real processes: Prometheus and Alertmanager from the Debian packages with the
repo's configs, both services, the Slack sink and the load generator. A real fault must reach a
Slack-compatible webhook, inhibition must hold, recovery must resolve; a brute-force burst must
page too. Measured times to detect are printed (run with -s to see them)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from tests.support.live_stack import LiveStack, http_json, wait_until

pytestmark = pytest.mark.e2e

ALERT_TIMEOUT = 150.0


def titles(stack: LiveStack, status: str | None = None) -> list[str]:
    found = []
    for message in stack.slack_messages():
        if status is None or message["status"] == status:
            found += [a.get("title", "") for a in message["payload"].get("attachments", [])]
    return found


def arrived(stack: LiveStack, needle: str, status: str = "firing") -> bool:
    return any(needle in title for title in titles(stack, status))


def alertmanager_alerts(stack: LiveStack) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = http_json(f"{stack.alertmanager_url}/api/v2/alerts")
    return alerts


def test_targets_up_and_traffic_flows(live_stack: LiveStack) -> None:
    def all_up() -> bool:
        up = {r["metric"]["job"]: r["value"][1] for r in live_stack.query("up")}
        return all(up.get(job) == "1" for job in ("userd", "orderd", "prometheus", "alertmanager", "loadgen"))

    wait_until(all_up, 60, "every target up")
    wait_until(
        lambda: bool(
            live_stack.query('sum(rate(grpc_server_handled_total{job="orderd",grpc_code="OK"}[1m])) > 0')
        ),
        60,
        "orderd serving traffic",
    )
    wait_until(
        lambda: bool(
            live_stack.query('sum(rate(grpc_client_handled_total{job="orderd",grpc_code="OK"}[1m])) > 0')
        ),
        30,
        "orderd -> userd client calls recorded",
    )
    # Watchdog goes to its own receiver, never to a people channel.
    wait_until(lambda: arrived(live_stack, "Watchdog"), 60, "Watchdog heartbeat")
    for message in live_stack.slack_messages():
        titles_here = [a.get("title", "") for a in message["payload"].get("attachments", [])]
        if any("Watchdog" in t for t in titles_here):
            assert message["hook"].endswith("heartbeat")


def test_userd_down_pages_then_resolves(live_stack: LiveStack) -> None:
    wait_until(lambda: bool(live_stack.query('up{job="userd"} == 1')), 60, "userd scraped")
    fault_at = time.monotonic()
    live_stack.kill_service("userd")

    service_down = wait_until(
        lambda: arrived(live_stack, "ServiceDown on userd"), ALERT_TIMEOUT, "ServiceDown"
    )
    print(f"\ntime to detect: ServiceDown for userd reached Slack {service_down:.1f}s after the kill")
    wait_until(lambda: arrived(live_stack, "HighGRPCFailures on orderd"), ALERT_TIMEOUT, "HighGRPCFailures")
    high_failures = time.monotonic() - fault_at
    print(f"time to detect: HighGRPCFailures from orderd reached Slack {high_failures:.1f}s after the kill")
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
    # straight to Alertmanager is suppressed and never reaches Slack.
    now = datetime.now(UTC)
    synthetic = [
        {
            "labels": {
                "alertname": "GRPCLatencyP95High",
                "service": "userd",
                "severity": "warning",
                "grpc_method": "Me",
            },
            "annotations": {"summary": "synthetic, must be inhibited"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=5)).isoformat(),
        }
    ]
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
    time.sleep(20)  # longer than the warning route's group_wait: had it been sent, it would be here
    assert not arrived(live_stack, "GRPCLatencyP95High on userd")

    # Resolve it before userd comes back: still active when ServiceDown resolves, it would no longer be
    # inhibited and would reach Slack then, and in whichever later test is running. Never notified
    # while firing, it gets no resolved message either.
    resolved_synthetic = [{**synthetic[0], "endsAt": datetime.now(UTC).isoformat()}]
    http_json(f"{live_stack.alertmanager_url}/api/v2/alerts", json.dumps(resolved_synthetic).encode(), "POST")

    def synthetic_gone() -> bool:
        # GET /api/v2/alerts leaves out resolved alerts.
        return not any(
            alert["labels"].get("alertname") == "GRPCLatencyP95High"
            and alert["labels"].get("service") == "userd"
            for alert in alertmanager_alerts(live_stack)
        )

    wait_until(synthetic_gone, 10, "synthetic userd alert resolved")

    restarted_at = time.monotonic()
    live_stack.start_service("userd")
    resolved = wait_until(
        lambda: arrived(live_stack, "ServiceDown on userd", "resolved"), ALERT_TIMEOUT, "resolved"
    )
    print(f"ServiceDown resolved message {resolved:.1f}s after userd came back")
    wait_until(
        lambda: arrived(live_stack, "HighGRPCFailures on orderd", "resolved"),
        ALERT_TIMEOUT,
        "resolved failures",
    )
    assert time.monotonic() - restarted_at < 2 * ALERT_TIMEOUT


def test_bruteforce_logins_page(live_stack: LiveStack) -> None:
    wait_until(lambda: bool(live_stack.query('up{job="userd"} == 1')), 60, "userd scraped")
    target = f"127.0.0.1:{live_stack.ports['userd_grpc']}"
    started = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        users = user_pb2_grpc.UserServiceStub(channel)
        users.Register(
            user_pb2.RegisterRequest(email="victim@example.com", password="the-right-one", name="V")
        )
        for attempt in range(20):
            with pytest.raises(grpc.RpcError) as caught:
                users.Login(
                    user_pb2.LoginRequest(email="victim@example.com", password=f"guess-{attempt:04d}")
                )
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            time.sleep(0.25)
    wait_until(lambda: arrived(live_stack, "InvalidLoginSpike on userd"), ALERT_TIMEOUT, "InvalidLoginSpike")
    print(
        f"\ntime to detect: InvalidLoginSpike reached Slack {time.monotonic() - started:.1f}s after the burst began"
    )
