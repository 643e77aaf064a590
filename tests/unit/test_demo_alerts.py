"""tools/demo_alerts.py without a stack: Slack titles parsed into (alertname, service), arrivals
credited to a scenario only for its own pairs and only after it started, and the Alertmanager
answer that decides whether the next scenario may start. Fixtures have the shape of the Slack sink's
GET /api/messages and Alertmanager's GET /api/v2/alerts."""

from __future__ import annotations

import re
import urllib.error
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import demo_alerts
import pytest
import yaml
from demo_alerts import DEMOS, NOT_DEMOED, AlertKey, Arrival

ROOT = Path(__file__).resolve().parents[2]

STARTED = datetime(2026, 12, 1, 7, 0, 0, tzinfo=UTC)


def message(received_at: str, *titles: str, status: str = "firing") -> dict[str, Any]:
    """One message as the Slack sink stores it (services/slacksink/store.py, Message.to_json)."""
    return {
        "received_at": received_at,
        "hook": "slack-warning",
        "status": status,
        "payload": {
            "channel": "#alerts-warning",
            "username": "alertmanager",
            "attachments": [{"title": title, "text": "…", "color": "danger"} for title in titles],
        },
    }


# Newest first, as GET /api/messages answers.
SINK_BODY: dict[str, Any] = {
    "count": 7,
    "messages": [
        message("2026-12-01T07:03:10.000+00:00", "[FIRING:2] GRPCServerErrorRateHigh on orderd"),
        message("2026-12-01T07:02:40.500+00:00", "[RESOLVED] HighGRPCFailures on orderd", status="resolved"),
        # The same alertname on another service is another alert.
        message("2026-12-01T07:02:00.000+00:00", "[FIRING:1] GRPCServerErrorRateHigh on userd"),
        message("2026-12-01T07:01:30.250+00:00", "[FIRING:1] Watchdog on prometheus"),
        # A webhook-style message without attachments, and a title of another shape.
        {"received_at": "2026-12-01T07:01:00.000+00:00", "hook": "x", "status": "firing", "payload": {}},
        message("2026-12-01T07:00:50.000+00:00", "deploy finished"),
        # A late notification of the previous scenario, before this one started.
        message("2026-12-01T06:59:58.000+00:00", "[FIRING:1] ErrorBudgetBurnFast on orderd"),
    ],
}


@pytest.mark.parametrize(
    ("title", "parsed"),
    [
        ("[FIRING:1] InvalidLoginSpike on userd", (AlertKey("InvalidLoginSpike", "userd"), "firing")),
        ("[FIRING:12] GRPCLatencyP95High on orderd", (AlertKey("GRPCLatencyP95High", "orderd"), "firing")),
        ("[RESOLVED] HighGRPCFailures on orderd", (AlertKey("HighGRPCFailures", "orderd"), "resolved")),
        # Only the title names the alert this way; the fallback appends ": summary", which is not a title.
        ("[FIRING:1] ServiceDown on userd: userd is down", None),
        ("[FIRING:1] ServiceDown", None),  # no service label: nothing to match on
        ("FIRING InvalidLoginSpike on userd", None),
        ("", None),
    ],
)
def test_parse_title(title: str, parsed: tuple[AlertKey, str] | None) -> None:
    assert demo_alerts.parse_title(title) == parsed


def test_arrivals_read_every_alert_title_of_the_sink_answer() -> None:
    found = demo_alerts.arrivals(SINK_BODY)
    assert [(str(a.key), a.status) for a in found] == [
        ("GRPCServerErrorRateHigh on orderd", "firing"),
        ("HighGRPCFailures on orderd", "resolved"),
        ("GRPCServerErrorRateHigh on userd", "firing"),
        ("Watchdog on prometheus", "firing"),
        ("ErrorBudgetBurnFast on orderd", "firing"),
    ]
    assert found[0].received_at == datetime(2026, 12, 1, 7, 3, 10, tzinfo=UTC)


def test_only_the_expected_pair_firing_after_the_start_is_credited() -> None:
    found = demo_alerts.arrivals(SINK_BODY)
    error_rate, burn = next(d.alerts for d in DEMOS if d.name == "errors")
    # Firing on orderd at 07:03:10; the 07:02:00 one was for userd.
    assert demo_alerts.first_firing(found, error_rate, STARTED) == datetime(2026, 12, 1, 7, 3, 10, tzinfo=UTC)
    # Arrived two seconds before the scenario started: another scenario's.
    assert demo_alerts.first_firing(found, burn, STARTED) is None
    # A resolved message is not an arrival.
    assert demo_alerts.first_firing(found, AlertKey("HighGRPCFailures", "orderd"), STARTED) is None


def test_the_earliest_firing_message_counts() -> None:
    key = AlertKey("InvalidLoginSpike", "userd")
    at = [datetime(2026, 12, 1, 7, 0, s, tzinfo=UTC) for s in (40, 20, 30)]
    found = [Arrival(key, "firing", t) for t in at]
    assert demo_alerts.first_firing(found, key, STARTED) == at[1]


class FakeClock:
    """time.monotonic and time.sleep for code that polls: sleeping advances the clock at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def am_alert(alertname: str, **labels: str) -> dict[str, Any]:
    """One entry of Alertmanager's GET /api/v2/alerts answer (the fields this tool reads, and some)."""
    return {
        "labels": {"alertname": alertname, **labels},
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        "startsAt": "2026-12-01T06:55:00.000Z",
        "fingerprint": f"{alertname}{sorted(labels.items())}",
    }


def test_only_the_watchdog_does_not_block_the_next_scenario() -> None:
    assert demo_alerts.blocking_alerts([am_alert("Watchdog", service="prometheus", severity="none")]) == []
    assert demo_alerts.blocking_alerts([]) == []
    body = [
        am_alert("Watchdog", service="prometheus"),
        # One alert per method, one notification group: reported once.
        am_alert("GRPCServerErrorRateHigh", service="orderd", grpc_method="CreateOrder"),
        am_alert("GRPCServerErrorRateHigh", service="orderd", grpc_method="GetOrder"),
        am_alert("ErrorBudgetBurnSlow", service="orderd"),
    ]
    assert demo_alerts.blocking_alerts(body) == [
        AlertKey("ErrorBudgetBurnSlow", "orderd"),
        AlertKey("GRPCServerErrorRateHigh", "orderd"),
    ]


def test_wait_quiet_polls_until_only_the_watchdog_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [[AlertKey("HighGRPCFailures", "orderd")], [AlertKey("HighGRPCFailures", "orderd")], []]
    calls: list[str] = []

    def active(url: str) -> list[AlertKey]:
        calls.append(url)
        return answers[len(calls) - 1]

    monkeypatch.setattr(demo_alerts, "active_alerts", active)
    clock = FakeClock()
    assert demo_alerts.wait_quiet("http://am", limit=60, sleep=clock.sleep, clock=clock) == []
    assert calls == ["http://am"] * 3
    assert clock.now == 2 * demo_alerts.POLL_SECONDS


def test_wait_quiet_gives_up_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = [AlertKey("ErrorBudgetBurnSlow", "orderd")]
    monkeypatch.setattr(demo_alerts, "active_alerts", lambda _url: stuck)
    clock = FakeClock()
    assert demo_alerts.wait_quiet("http://am", limit=10, sleep=clock.sleep, clock=clock) == stuck
    assert 10 <= clock.now < 10 + demo_alerts.POLL_SECONDS


def test_every_alert_is_demoed_or_says_why_not() -> None:
    """Each alert in alerts.yml is set off by one demo or named in NOT_DEMOED, never both; a demo's
    expected service is the target label its rule keeps (or the one the rule sets)."""
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load((ROOT / "prometheus" / "rules" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    demoed = [key.alertname for demo in DEMOS for key in demo.alerts]
    assert len(demoed) == len(set(demoed))
    assert set(demoed).isdisjoint(NOT_DEMOED)
    assert set(demoed) | set(NOT_DEMOED) == set(rules)
    for demo in DEMOS:
        assert demo.typical_seconds > 0
        for key in demo.alerts:
            assert key.service in ("userd", "orderd", "prometheus", "alertmanager"), key
            assert rules[key.alertname].get("labels", {}).get("service", key.service) == key.service
    for why in NOT_DEMOED.values():
        proofs = re.findall(r"(?:prometheus/tests|tests)/[\w/.]+\.(?:yml|py)", why)
        assert proofs, why
        assert all((ROOT / proof).exists() for proof in proofs), proofs


def test_wait_quiet_waits_through_an_alertmanager_that_is_starting_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[object] = [urllib.error.URLError("refused"), [], []]

    def fake(_url: str) -> list[AlertKey]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    monkeypatch.setattr(demo_alerts, "active_alerts", fake)
    assert demo_alerts.wait_quiet("http://am", 10, sleep=lambda _s: None) == []
    assert len(answers) == 1
