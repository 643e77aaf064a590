"""The real Alertmanager binary with alertmanager.yml unchanged (only the secret files point at a Slack
sink on a free port): a critical alert arrives rendered in the critical channel, the Watchdog goes to
the heartbeat receiver only, and inhibition mutes what it should and nothing else.

Timing comes from the committed config: heartbeat group_wait 0s, critical 5s, warning 10s; the whole
module takes about 12 s."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slacksink.server import SinkServer
from slacksink.store import MessageStore
from stackconfig import NotificationUrls

from tests.stack.support import (
    alertmanager_config_copy,
    free_port,
    get_json,
    http_get,
    http_post,
    running_sink,
    wait_for,
)

pytestmark = [pytest.mark.alertmanager, pytest.mark.e2e]

RUNBOOK = "https://github.com/example-org/grpc-observability-demo/blob/main/docs/runbook.md"


@dataclass
class Stack:
    alertmanager_url: str
    sink: SinkServer

    def messages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = get_json(self.sink.url + "/api/messages")["messages"]
        return result

    def titles(self, hook: str | None = None) -> list[str]:
        return [
            attachment["title"]
            for message in self.messages()
            if hook is None or message["hook"] == hook
            for attachment in message["payload"].get("attachments", [])
        ]


@pytest.fixture(scope="module")
def stack(alertmanager_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("alertmanager")
    with MessageStore(max_messages=100) as store, running_sink(store) as sink:
        config = alertmanager_config_copy(
            workdir / "config", NotificationUrls.from_env({}, sink_url=sink.url)
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (workdir / "alertmanager.log").open("w") as log:
            process = subprocess.Popen(
                [
                    alertmanager_binary,
                    f"--config.file={config}",
                    f"--storage.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--web.external-url={url}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                # Alertmanager 0.25 opens api_url_file relative to its working directory (templates
                # are resolved against the config file): run it from the config folder, as `make up` must.
                cwd=config.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for(
                    lambda: True if _ready(url) else _fail_if_exited(process, workdir),
                    timeout=15,
                    what="Alertmanager to become ready",
                )
                yield Stack(url, sink)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def _ready(url: str) -> bool:
    try:
        return http_get(url + "/-/ready", timeout=1)[0] == 200
    except OSError:
        return False


def _fail_if_exited(process: subprocess.Popen[bytes], workdir: Path) -> None:
    if process.poll() is not None:
        raise AssertionError(f"Alertmanager exited: {(workdir / 'alertmanager.log').read_text()}")


def prometheus_alert(alertname: str, severity: str, service: str, **labels: str) -> dict[str, Any]:
    """An alert the way Prometheus posts it: labels, annotations, startsAt and a future endsAt."""
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": alertname, "severity": severity, "service": service, **labels},
        "annotations": {
            "summary": f"{alertname} summary for {service}",
            "description": f"{alertname} description for {service} (value 42).",
            "runbook_url": f"{RUNBOOK}#{alertname.lower()}",
            "dashboard_url": "http://localhost:3000/d/grpc-overview",
        },
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://127.0.0.1:9090/graph",
    }


def alerts() -> list[dict[str, Any]]:
    """Built when posted: endsAt is relative to now, and the module may be imported minutes earlier
    than its tests run (an alert whose endsAt has passed is resolved on arrival)."""
    return [
        # Not muted by ServiceDown of another service (userd's, below).
        prometheus_alert("GRPCLatencyP95High", "warning", "orderd", job="orderd", grpc_method="CreateOrder"),
        prometheus_alert("ErrorBudgetBurnFast", "critical", "orderd", job="orderd"),
        prometheus_alert("ErrorBudgetBurnSlow", "warning", "orderd", job="orderd"),
        # A critical mutes the warning of the same alert and service.
        prometheus_alert("OrderCreationFailing", "critical", "orderd", job="orderd"),
        prometheus_alert("OrderCreationFailing", "warning", "orderd", job="orderd"),
        prometheus_alert("Watchdog", "none", "prometheus"),
    ]


def outage() -> list[dict[str, Any]]:
    """userd down: from now on orderd's failing orders and burn rates are its after-effects."""
    return [
        prometheus_alert("ServiceDown", "critical", "userd", job="userd", instance="userd:9091"),
        # Muted by ServiceDown for the same service.
        prometheus_alert("GRPCLatencyP95High", "warning", "userd", job="userd", grpc_method="Login"),
    ]


@pytest.fixture(scope="module")
def delivered(stack: Stack) -> Stack:
    seen: set[tuple[str, str]] = set()

    def post_and_wait(batch: list[dict[str, Any]], expected: set[tuple[str, str]]) -> None:
        status, body = http_post(stack.alertmanager_url + "/api/v2/alerts", json.dumps(batch).encode())
        assert status == 200, body

        def all_arrived() -> bool | None:
            seen.update(
                (m["hook"], a["title"]) for m in stack.messages() for a in m["payload"].get("attachments", [])
            )
            return True if expected <= seen else None

        # group_wait is 10s for warnings; the warning group for orderd was created together with the
        # (muted) one for userd, so once it has arrived the muted one would have too.
        try:
            wait_for(all_arrived, timeout=30, what="notifications")
        except AssertionError as error:
            raise AssertionError(f"{error}: missing {sorted(expected - seen)}, got {sorted(seen)}") from None

    post_and_wait(
        alerts(),
        {
            ("/hooks/critical", "[FIRING:1] ErrorBudgetBurnFast on orderd"),
            ("/hooks/critical", "[FIRING:1] OrderCreationFailing on orderd"),
            ("/hooks/warning", "[FIRING:1] GRPCLatencyP95High on orderd"),
            ("/hooks/heartbeat", "[FIRING:1] Watchdog on prometheus"),
        },
    )
    post_and_wait([*alerts(), *outage()], {("/hooks/critical", "[FIRING:1] ServiceDown on userd")})
    return stack


def test_critical_alert_reaches_the_critical_channel_rendered(delivered: Stack) -> None:
    [message] = [
        m
        for m in delivered.messages()
        if m["payload"]["attachments"][0]["title"] == "[FIRING:1] ServiceDown on userd"
    ]
    payload = message["payload"]
    assert message["hook"] == "/hooks/critical"
    assert message["status"] == "firing"
    assert payload["channel"] == "#alerts-critical"
    assert payload["username"] == "alertmanager"
    [attachment] = payload["attachments"]
    assert attachment["color"] == "danger"
    assert attachment["title_link"] == "http://localhost:3000/d/grpc-overview"
    assert attachment["text"].startswith(":red_circle: *FIRING* | severity *critical* | service *userd*\n")
    assert "*ServiceDown summary for userd*" in attachment["text"]
    assert "ServiceDown description for userd (value 42)." in attachment["text"]
    assert "`instance=userd:9091` `job=userd`" in attachment["text"]
    assert attachment["fallback"] == "[FIRING:1] ServiceDown on userd: ServiceDown summary for userd"
    buttons = {action["text"].split(" ")[0]: action["url"] for action in attachment["actions"]}
    assert buttons == {
        "Runbook": f"{RUNBOOK}#servicedown",
        "Dashboard": "http://localhost:3000/d/grpc-overview",
        "Silence": (
            f"{delivered.alertmanager_url}/#/silences/new?filter=%7B"
            "alertname%3D%22ServiceDown%22%2Cinstance%3D%22userd%3A9091%22%2Cjob%3D%22userd%22"
            "%2Cservice%3D%22userd%22%2Cseverity%3D%22critical%22%7D"
        ),
    }


def test_warning_channel_gets_the_same_rendering(delivered: Stack) -> None:
    [message] = [m for m in delivered.messages() if m["hook"] == "/hooks/warning"]
    payload = message["payload"]
    assert payload["channel"] == "#alerts-warning"
    [attachment] = payload["attachments"]
    assert attachment["color"] == "warning"
    assert [action["text"].split(" ")[0] for action in attachment["actions"]] == [
        "Runbook",
        "Dashboard",
        "Silence",
    ]
    assert "`grpc_method=CreateOrder`" in attachment["text"]


def test_watchdog_goes_only_to_the_heartbeat_receiver(delivered: Stack) -> None:
    heartbeat = [m for m in delivered.messages() if m["hook"] == "/hooks/heartbeat"]
    assert heartbeat
    for message in heartbeat:
        assert "channel" not in message["payload"]
        assert message["payload"]["attachments"][0]["text"] == (
            f"Heartbeat from {delivered.alertmanager_url}: the alerting pipeline works."
        )
    people = [
        title
        for hook in ("/hooks/critical", "/hooks/warning", "/hooks/info")
        for title in delivered.titles(hook)
    ]
    assert not any("Watchdog" in title for title in people)
    assert delivered.titles("/hooks/heartbeat") == ["[FIRING:1] Watchdog on prometheus"] * len(heartbeat)


def test_inhibited_alerts_are_not_delivered(delivered: Stack) -> None:
    titles = delivered.titles()
    assert "[FIRING:1] GRPCLatencyP95High on userd" not in titles
    assert "[FIRING:1] ErrorBudgetBurnSlow on orderd" not in titles
    assert len(titles) == len(set(titles)), "each group once"
    # OrderCreationFailing: one group for both severities; only the critical one is in it.
    [creation] = [
        m
        for m in delivered.messages()
        if m["payload"]["attachments"][0]["title"].startswith("[FIRING:1] OrderCreation")
    ]
    assert "severity *critical*" in creation["payload"]["attachments"][0]["text"]
    assert "severity *warning*" not in creation["payload"]["attachments"][0]["text"]


def test_alertmanager_reports_what_inhibited_what(delivered: Stack) -> None:
    alerts = get_json(delivered.alertmanager_url + "/api/v2/alerts")
    state = {
        (a["labels"]["alertname"], a["labels"]["service"], a["labels"]["severity"]): a["status"]
        for a in alerts
    }
    suppressed = {key for key, status in state.items() if status["state"] == "suppressed"}
    assert suppressed == {
        ("GRPCLatencyP95High", "userd", "warning"),
        ("ErrorBudgetBurnSlow", "orderd", "warning"),
        ("OrderCreationFailing", "orderd", "warning"),
        # Since userd went down: orderd's failures are its after-effects, one outage pages once.
        ("ErrorBudgetBurnFast", "orderd", "critical"),
        ("OrderCreationFailing", "orderd", "critical"),
    }
    for key in suppressed:
        assert state[key]["inhibitedBy"], key
        assert not state[key]["silencedBy"], key
    assert state[("Watchdog", "prometheus", "none")]["state"] == "active"
