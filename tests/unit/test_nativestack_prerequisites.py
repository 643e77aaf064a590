"""tools/nativestack/prerequisites.py's decisions without installing or running anything: apt/systemd
(fake command runner) and the port-in-use message. Real ports, signals and processes:
tests/integration/test_supervisor.py."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nativestack import prerequisites as pre
from nativestack.prerequisites import StackError

ROOT = Path(__file__).resolve().parents[2]


class FakeRunner:
    """Records each command; answers with the exit code `codes` gives for its first two words."""

    def __init__(self, codes: dict[tuple[str, str], int] | None = None) -> None:
        self.codes = codes or {}
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        self.commands.append(command)
        return subprocess.CompletedProcess(command, self.codes.get((command[0], command[1]), 0))


# --- installing the Debian packages ----------------------------------------------------------------


def test_install_without_recommends_then_disable_the_units_on_systemd() -> None:
    assert pre.install_commands(["prometheus", "prometheus-alertmanager"], systemd=True) == [
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus",
            "prometheus-alertmanager",
        ],
        ["systemctl", "disable", "--now", "prometheus", "prometheus-alertmanager"],
    ]


def test_no_systemctl_without_systemd() -> None:
    assert pre.install_commands(["prometheus"], systemd=False) == [
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]
    ]


def test_install_runs_update_install_and_disable_in_order() -> None:
    run = FakeRunner()
    pre.install_packages(["prometheus", "prometheus-alertmanager"], systemd=True, run=run)
    assert [command[:2] for command in run.commands] == [
        ["apt-get", "update"],
        ["apt-get", "install"],
        ["systemctl", "disable"],
    ]


def test_a_failed_update_is_not_fatal() -> None:
    run = FakeRunner({("apt-get", "update"): 100})
    pre.install_packages(["prometheus"], systemd=False, run=run)
    assert [command[:2] for command in run.commands] == [["apt-get", "update"], ["apt-get", "install"]]


def test_a_failed_install_is_one_stack_error_line_and_nothing_is_disabled() -> None:
    run = FakeRunner({("apt-get", "install"): 100})
    with pytest.raises(StackError) as caught:
        pre.install_packages(["prometheus", "prometheus-alertmanager"], systemd=True, run=run)
    message = str(caught.value)
    assert "\n" not in message
    assert "apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager" in message
    assert "exit code 100" in message
    assert not any(command[0] == "systemctl" for command in run.commands)


def test_a_failed_disable_only_warns(capsys: pytest.CaptureFixture[str]) -> None:
    run = FakeRunner({("systemctl", "disable"): 1})
    pre.install_packages(["prometheus"], systemd=True, run=run)
    assert "warning: `systemctl disable --now prometheus` failed" in capsys.readouterr().err


@dataclass
class FakeHost:
    """Which binaries are on PATH, and the installs asked for (after one, everything is present)."""

    present: set[str] = field(default_factory=set)
    installs: list[tuple[list[str], bool]] = field(default_factory=list)

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.present or self.installs else None

    def install(self, packages: Sequence[str], *, systemd: bool) -> None:
        self.installs.append((list(packages), systemd))


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    monkeypatch.setattr(shutil, "which", fake.which)
    monkeypatch.setattr(pre, "install_packages", fake.install)
    monkeypatch.setattr(pre, "can_apt_install", lambda: True)
    monkeypatch.setattr(pre, "systemd_running", lambda: True)
    return fake


def test_both_missing_are_installed_in_one_go(host: FakeHost) -> None:
    assert pre.find_binaries() == (
        "/usr/bin/prometheus",
        "/usr/bin/prometheus-alertmanager",
        "/usr/bin/prometheus-blackbox-exporter",
    )
    assert host.installs == [
        (["prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter"], True)
    ]


def test_only_the_missing_package_is_installed(host: FakeHost) -> None:
    # So only its unit is disabled: a Prometheus installed before is someone else's business.
    host.present.update({"prometheus", "prometheus-blackbox-exporter"})
    pre.find_binaries()
    assert host.installs == [(["prometheus-alertmanager"], True)]


def test_nothing_is_installed_when_both_are_there(host: FakeHost) -> None:
    host.present.update({"prometheus", "alertmanager", "blackbox_exporter"})
    assert pre.find_binaries() == (
        "/usr/bin/prometheus",
        "/usr/bin/alertmanager",
        "/usr/bin/blackbox_exporter",
    )
    assert host.installs == []


def test_without_apt_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(pre, "can_apt_install", lambda: False)
    with pytest.raises(StackError, match="sudo apt-get install prometheus`"):
        pre.find_binaries()


@pytest.mark.parametrize(
    ("systemctl", "run_dir", "expected"),
    [(True, True, True), (True, False, False), (False, True, False)],
)
def test_systemd_running_needs_systemctl_and_a_running_systemd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, systemctl: bool, run_dir: bool, expected: bool
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/systemctl" if systemctl else None)
    if run_dir:
        (tmp_path / "system").mkdir()
    monkeypatch.setattr(pre, "SYSTEMD_RUN_DIR", tmp_path / "system")
    assert pre.systemd_running() is expected


# --- ports already in use ----------------------------------------------------------------------------


def test_port_message_without_a_debian_unit() -> None:
    message = pre.port_in_use_message([(9090, "prometheus http")], [])
    assert (
        message
        == "port already in use: 9090 (prometheus http). Stop whatever holds it (`make down`?) and retry."
    )


def test_port_message_names_the_active_debian_units() -> None:
    message = pre.port_in_use_message(
        [(9090, "prometheus http"), (9093, "alertmanager http")], ["prometheus", "prometheus-alertmanager"]
    )
    assert message.startswith("port already in use: 9090 (prometheus http), 9093 (alertmanager http). ")
    assert "prometheus, prometheus-alertmanager are active" in message
    assert "`sudo systemctl disable --now prometheus prometheus-alertmanager`" in message
    assert "\n" not in message


def test_active_units_asks_systemctl_per_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pre, "systemd_running", lambda: True)
    run = FakeRunner({("systemctl", "is-active"): 0})
    assert pre.active_units(["prometheus"], run=run) == ["prometheus"]
    assert run.commands == [["systemctl", "is-active", "--quiet", "prometheus"]]
    assert pre.active_units(["prometheus"], run=FakeRunner({("systemctl", "is-active"): 3})) == []


def test_active_units_without_systemd_asks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pre, "systemd_running", lambda: False)
    run = FakeRunner()
    assert pre.active_units(["prometheus"], run=run) == []
    assert run.commands == []
