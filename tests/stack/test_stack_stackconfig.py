"""tools/stackconfig.py: the target files Prometheus reads and the webhook URL files Alertmanager reads."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from stackconfig import (
    JOBS,
    LOCAL_SINK_URL,
    METRICS_PORTS,
    SECRET_FILES,
    NotificationUrls,
    main,
    targets_on,
    write_alertmanager_secrets,
    write_compose_targets,
    write_prometheus_targets,
)

from tests.stack.support import PROMETHEUS_DIR


def test_native_targets_use_one_host_and_label_service_with_the_job(tmp_path: Path) -> None:
    written = write_prometheus_targets(tmp_path / "targets", targets_on(lambda _job: "127.0.0.1"))

    assert sorted(path.name for path in written) == sorted(f"{job}.json" for job in JOBS)
    assert json.loads((tmp_path / "targets" / "userd.json").read_text()) == [
        {"targets": ["127.0.0.1:9091"], "labels": {"service": "userd"}}
    ]
    for job in JOBS:
        [group] = json.loads((tmp_path / "targets" / f"{job}.json").read_text())
        assert group == {"targets": [f"127.0.0.1:{METRICS_PORTS[job]}"], "labels": {"service": job}}


def test_ports_follow_the_contract() -> None:
    assert dict(METRICS_PORTS) == {
        "userd": 9091,
        "orderd": 9092,
        "loadgen": 9097,
        "prometheus": 9090,
        "alertmanager": 9093,
    }


def test_rewrite_replaces_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    write_prometheus_targets(tmp_path, targets_on(lambda _job: "127.0.0.1"))
    write_prometheus_targets(tmp_path, targets_on(lambda job: job, {**METRICS_PORTS, "userd": 19091}))

    assert json.loads((tmp_path / "userd.json").read_text())[0]["targets"] == ["userd:19091"]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{job}.json" for job in JOBS)


def test_committed_compose_targets_match_the_generator(tmp_path: Path) -> None:
    """prometheus/targets/compose/ is generated; regenerate with
    `python tools/stackconfig.py prometheus-targets prometheus/targets/compose --compose`."""
    write_compose_targets(tmp_path)
    committed = PROMETHEUS_DIR / "targets" / "compose"
    assert sorted(p.name for p in committed.iterdir()) == sorted(p.name for p in tmp_path.iterdir())
    for path in tmp_path.iterdir():
        assert (committed / path.name).read_text() == path.read_text(), path.name


def test_replicas_are_targets_of_one_job_and_every_job_is_required(tmp_path: Path) -> None:
    targets = {**targets_on(lambda _job: "127.0.0.1"), "userd": ["127.0.0.1:9091", "127.0.0.1:9191"]}
    write_prometheus_targets(tmp_path, targets)
    assert json.loads((tmp_path / "userd.json").read_text()) == [
        {"targets": ["127.0.0.1:9091", "127.0.0.1:9191"], "labels": {"service": "userd"}}
    ]
    with pytest.raises(ValueError, match="no targets for jobs"):
        write_prometheus_targets(tmp_path, {"userd": ["127.0.0.1:9091"]})


def test_urls_default_to_the_local_sink() -> None:
    urls = NotificationUrls.from_env({})
    assert dict(urls.urls) == {
        "slack-critical": f"{LOCAL_SINK_URL}/hooks/critical",
        "slack-warning": f"{LOCAL_SINK_URL}/hooks/warning",
        "slack-info": f"{LOCAL_SINK_URL}/hooks/info",
        "heartbeat": f"{LOCAL_SINK_URL}/hooks/heartbeat",
    }


def test_urls_from_env_prefer_per_severity_and_never_send_heartbeats_to_slack() -> None:
    urls = NotificationUrls.from_env(
        {
            "SLACK_WEBHOOK_URL": "https://hooks.slack.example/shared",
            "SLACK_WEBHOOK_URL_CRITICAL": "https://hooks.slack.example/pager",
        },
        sink_url="http://slacksink:9095/",
    )
    assert dict(urls.urls) == {
        "slack-critical": "https://hooks.slack.example/pager",
        "slack-warning": "https://hooks.slack.example/shared",
        "slack-info": "https://hooks.slack.example/shared",
        "heartbeat": "http://slacksink:9095/hooks/heartbeat",
    }
    with_heartbeat = NotificationUrls.from_env({"HEARTBEAT_WEBHOOK_URL": "https://dms.example/ping/abc"})
    assert with_heartbeat.urls["heartbeat"] == "https://dms.example/ping/abc"


def test_secret_files_are_private_and_hold_the_url(tmp_path: Path) -> None:
    urls = NotificationUrls.from_env({"SLACK_WEBHOOK_URL": "https://hooks.slack.example/T/B/secret"})
    written = write_alertmanager_secrets(tmp_path, urls)

    assert sorted(written) == sorted(tmp_path / relative for relative in SECRET_FILES.values())
    for receiver, relative in SECRET_FILES.items():
        path = tmp_path / relative
        assert path.read_text() == urls.urls[receiver] + "\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secret_files_mode_can_be_widened_for_containers(tmp_path: Path) -> None:
    write_alertmanager_secrets(tmp_path, NotificationUrls.from_env({}), mode=0o644)
    for relative in SECRET_FILES.values():
        assert stat.S_IMODE((tmp_path / relative).stat().st_mode) == 0o644


def test_secret_files_reject_non_http_urls_without_echoing_them(tmp_path: Path) -> None:
    urls = NotificationUrls(
        {**NotificationUrls.from_env({}).urls, "slack-warning": "file:///etc/secret-token"}
    )
    with pytest.raises(ValueError, match="slack-warning") as raised:
        write_alertmanager_secrets(tmp_path, urls)
    assert "secret-token" not in str(raised.value)


def test_secret_files_require_every_receiver(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        write_alertmanager_secrets(tmp_path, NotificationUrls({"slack-critical": "http://x"}))


def test_secret_files_are_git_ignored() -> None:
    ignored = (PROMETHEUS_DIR.parent / ".gitignore").read_text().split()
    assert "secrets/" in ignored


def test_cli_writes_targets_and_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "SLACK_WEBHOOK_URL",
        "SLACK_WEBHOOK_URL_CRITICAL",
        "SLACK_WEBHOOK_URL_INFO",
        "HEARTBEAT_WEBHOOK_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_WEBHOOK_URL_WARNING", "https://hooks.slack.example/warn")

    assert main(["prometheus-targets", str(tmp_path / "targets"), "--host", "10.0.0.5"]) == 0
    assert main(["alertmanager-secrets", str(tmp_path / "am"), "--sink-url", "http://127.0.0.1:19095"]) == 0

    assert json.loads((tmp_path / "targets" / "orderd.json").read_text())[0]["targets"] == ["10.0.0.5:9092"]
    assert (
        tmp_path / "am" / SECRET_FILES["slack-warning"]
    ).read_text() == "https://hooks.slack.example/warn\n"
    assert (
        tmp_path / "am" / SECRET_FILES["slack-critical"]
    ).read_text() == "http://127.0.0.1:19095/hooks/critical\n"
    # Paths only: the URLs are credentials and stay out of the output.
    assert "hooks.slack.example" not in capsys.readouterr().out
