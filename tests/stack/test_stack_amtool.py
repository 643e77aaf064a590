"""amtool: alertmanager.yml is valid, routes every severity and the Watchdog to the right receiver, and
the Slack templates render firing, resolved and grouped notifications as intended."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from stackconfig import SECRET_FILES

from tests.stack.support import ALERTMANAGER_DIR, PROMETHEUS_DIR, alertmanager_config_copy

pytestmark = pytest.mark.alertmanager

DEFAULT_TEMPLATES = Path("/usr/share/prometheus/alertmanager/default.tmpl")
EXTERNAL_URL = "http://127.0.0.1:9093"
RUNBOOK = "https://github.com/example-org/grpc-observability-demo/blob/main/docs/runbook.md"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return alertmanager_config_copy(tmp_path / "alertmanager")


def test_config_is_valid(amtool: str, config: Path) -> None:
    result = run(amtool, "check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 inhibit rules" in result.stdout
    assert "5 receivers" in result.stdout
    assert "1 templates" in result.stdout


def test_config_in_repo_is_valid_without_secrets(amtool: str) -> None:
    # The secret files are read when sending, so the committed config checks clean on its own.
    result = run(amtool, "check-config", str(ALERTMANAGER_DIR / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_url_in_config_and_every_receiver_reads_a_secret_file() -> None:
    text = (ALERTMANAGER_DIR / "alertmanager.yml").read_text()
    assert "http://" not in text and "https://" not in text
    document = yaml.safe_load(text)
    receivers = {receiver["name"]: receiver for receiver in document["receivers"]}
    # The one receiver that sends nothing: ServiceRecentlyDown only inhibits.
    assert receivers.pop("inhibit-only") == {"name": "inhibit-only"}
    assert set(receivers) == set(SECRET_FILES)
    for name, receiver in receivers.items():
        assert set(receiver) == {"name", "slack_configs"}, name
        for slack in receiver["slack_configs"]:
            assert slack["api_url_file"] == SECRET_FILES[name]
            # Heartbeats only ever say "still alive"; every people channel also hears "resolved".
            assert slack["send_resolved"] is (name != "heartbeat")


def _alert_severities() -> dict[str, str]:
    document = yaml.safe_load((PROMETHEUS_DIR / "rules" / "alerts.yml").read_text())
    return {
        rule["alert"]: rule["labels"]["severity"] for group in document["groups"] for rule in group["rules"]
    }


RECEIVER_FOR_SEVERITY = {"critical": "slack-critical", "warning": "slack-warning", "info": "slack-info"}
# Matched by name before severity: the heartbeat, and the inhibition source nobody hears of.
RECEIVER_FOR_NAME = {"Watchdog": "heartbeat", "ServiceRecentlyDown": "inhibit-only"}

ROUTE_CASES = [
    *(
        (
            alertname,
            severity,
            service,
            RECEIVER_FOR_NAME.get(alertname) or RECEIVER_FOR_SEVERITY[severity],
        )
        for alertname, severity in sorted(_alert_severities().items())
        for service in (("prometheus",) if alertname == "Watchdog" else ("userd", "orderd"))
    ),
    ("SomeInfoAlert", "info", "userd", "slack-info"),
    ("SomeInfoAlert", "info", "orderd", "slack-info"),
    # No or an unknown severity still reaches people.
    ("Unlabelled", "", "orderd", "slack-warning"),
    ("Unlabelled", "page", "userd", "slack-warning"),
    # The Watchdog is matched by name before severity, whatever severity it carries.
    ("Watchdog", "critical", "prometheus", "heartbeat"),
]


@pytest.mark.parametrize(("alertname", "severity", "service", "receiver"), ROUTE_CASES)
def test_routes(
    amtool: str, config: Path, alertname: str, severity: str, service: str, receiver: str
) -> None:
    labels = [f"alertname={alertname}", f"service={service}"] + ([f"severity={severity}"] if severity else [])
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_route_verification_can_fail(amtool: str, config: Path) -> None:
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        "--verify.receivers=slack-critical",
        "alertname=Watchdog",
        "severity=none",
        "service=prometheus",
    )
    assert result.returncode != 0
    assert result.stdout.strip().splitlines()[0] == "heartbeat"


# --- Template rendering --------------------------------------------------------------------------


def alert(
    alertname: str,
    severity: str,
    service: str,
    summary: str,
    description: str,
    *,
    status: str = "firing",
    dashboard: str = "grpc-server",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": severity, "service": service, **labels},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{RUNBOOK}#{alertname.lower()}",
            "dashboard_url": f"http://localhost:3000/d/{dashboard}",
        },
        "startsAt": "2024-05-01T12:00:00Z",
        "endsAt": "2024-05-01T12:07:30Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": "0123456789abcdef",
    }


def group(receiver: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """template.Data the way Alertmanager builds it for one notification group."""
    common = dict(alerts[0]["labels"])
    for other in alerts[1:]:
        common = {key: value for key, value in common.items() if other["labels"].get(key) == value}
    return {
        "receiver": receiver,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": alerts,
        "groupLabels": {key: common[key] for key in ("alertname", "service") if key in common},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": EXTERNAL_URL,
    }


SERVICE_DOWN = alert(
    "ServiceDown",
    "critical",
    "userd",
    "userd is down: userd:9091 does not answer scrapes",
    "Prometheus has failed to scrape userd:9091 (job userd) for more than 30s (up = 0).",
    dashboard="grpc-overview",
    job="userd",
    instance="userd:9091",
)


def latency(method: str, value: str, status: str = "firing") -> dict[str, Any]:
    return alert(
        "GRPCLatencyP95High",
        "warning",
        "orderd",
        f"orderd {method} is slow",
        f"p95 latency of order.v1.OrderService/{method} on orderd is {value} over the last minute.",
        status=status,
        job="orderd",
        grpc_service="order.v1.OrderService",
        grpc_method=method,
    )


FIXTURES = {
    "firing": group("slack-critical", [SERVICE_DOWN]),
    "resolved": group(
        "slack-critical", [{**SERVICE_DOWN, "status": "resolved", "endsAt": "2024-05-01T12:07:30Z"}]
    ),
    "grouped": group(
        "slack-warning",
        [
            latency("CreateOrder", "975ms"),
            latency("GetOrder", "612ms"),
            latency("ListOrders", "420ms", "resolved"),
        ],
    ),
}


@pytest.fixture
def render(amtool: str, tmp_path: Path) -> Any:
    globs = [f"--template.glob={ALERTMANAGER_DIR / 'templates' / '*.tmpl'}"]
    if DEFAULT_TEMPLATES.exists():
        globs.append(f"--template.glob={DEFAULT_TEMPLATES}")

    def render_template(fixture: str, name: str) -> str:
        data = tmp_path / f"{fixture}.json"
        data.write_text(json.dumps(FIXTURES[fixture]))
        result = run(
            amtool,
            "template",
            "render",
            *globs,
            f"--template.data={data}",
            f'--template.text={{{{ template "{name}" . }}}}',
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    return render_template


def test_firing_message(render: Any) -> None:
    assert render("firing", "slack.demo.title") == "[FIRING:1] ServiceDown on userd"
    assert render("firing", "slack.demo.color") == "danger"
    assert render("firing", "slack.demo.text") == (
        ":red_circle: *FIRING* | severity *critical* | service *userd*\n"
        "*userd is down: userd:9091 does not answer scrapes*\n"
        "Prometheus has failed to scrape userd:9091 (job userd) for more than 30s (up = 0).\n"
        "Labels: `instance=userd:9091` `job=userd`\n"
        "Since 2024-05-01 12:00:00 UTC"
    )
    assert render("firing", "slack.demo.fallback") == (
        "[FIRING:1] ServiceDown on userd: userd is down: userd:9091 does not answer scrapes"
    )


def test_links(render: Any) -> None:
    assert render("firing", "slack.demo.runbook_url") == f"{RUNBOOK}#servicedown"
    assert render("firing", "slack.demo.dashboard_url") == "http://localhost:3000/d/grpc-overview"
    assert render("firing", "slack.demo.silence_url") == (
        f"{EXTERNAL_URL}/#/silences/new?filter=%7B"
        "alertname%3D%22ServiceDown%22%2Cinstance%3D%22userd%3A9091%22%2Cjob%3D%22userd%22"
        "%2Cservice%3D%22userd%22%2Cseverity%3D%22critical%22%7D"
    )


def test_resolved_message_is_distinct(render: Any) -> None:
    assert render("resolved", "slack.demo.title") == "[RESOLVED] ServiceDown on userd"
    assert render("resolved", "slack.demo.color") == "good"
    text = render("resolved", "slack.demo.text")
    assert text.startswith(":large_green_circle: *RESOLVED* | severity *critical* | service *userd*\n")
    assert text.endswith("Resolved 2024-05-01 12:07:30 UTC")


def test_grouped_message_lists_every_alert(render: Any) -> None:
    assert render("grouped", "slack.demo.title") == "[FIRING:2] GRPCLatencyP95High on orderd"
    assert render("grouped", "slack.demo.color") == "warning"
    text = render("grouped", "slack.demo.text")
    blocks = text.split("\n\n")
    assert blocks[0] == "*3 alerts:* 2 firing, 1 resolved"
    assert len(blocks) == 4
    for block, method, value in zip(
        blocks[1:], ("CreateOrder", "GetOrder", "ListOrders"), ("975ms", "612ms", "420ms"), strict=True
    ):
        assert f"*orderd {method} is slow*" in block
        assert f"on orderd is {value}" in block
        assert f"`grpc_method={method}`" in block
    assert blocks[3].startswith(":large_green_circle: *RESOLVED*")
    # Silence only what the whole group shares: not one method.
    silence = render("grouped", "slack.demo.silence_url")
    assert "grpc_method" not in silence
    assert "alertname%3D%22GRPCLatencyP95High%22" in silence
    assert "service%3D%22orderd%22" in silence


def test_heartbeat_text(render: Any) -> None:
    assert render("firing", "slack.demo.heartbeat_text") == (
        f"Heartbeat from {EXTERNAL_URL}: the alerting pipeline works."
    )
