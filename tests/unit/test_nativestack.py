"""The native stack's one description (tools/nativestack/components.py) and what `make up` and the
end-to-end fixtures build from it, `.env` handling, holds and pid files; nothing is started here
(the supervisor with real processes: tests/integration/test_supervisor.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import up
from nativestack import prerequisites as pre
from nativestack.components import (
    Binaries,
    Ports,
    ServicePorts,
    StackOverrides,
    StackSettings,
    components,
    describe,
)
from nativestack.dotenv import SECRETS, ensure_secrets, read_dotenv
from nativestack.supervisor import held_until, owned_pid, write_hold, write_pid_file

from tests.support import live_stack

BINARIES = Binaries("/usr/bin/prometheus", "/usr/bin/prometheus-alertmanager", Path("/venv/bin"))


@pytest.fixture
def make_up(monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    """The settings `make up` runs with, from an empty `.env`."""
    monkeypatch.setattr(
        up, "find_binaries", lambda: (BINARIES.prometheus, BINARIES.alertmanager, BINARIES.blackbox)
    )
    monkeypatch.setattr(up, "find_grafana", lambda _env: None)
    monkeypatch.setattr(sys, "executable", "/venv/bin/python")
    return up.native_settings({})


def by_name(settings: StackSettings) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in json.loads(describe(components(settings)))}


def test_make_up_starts_the_documented_components_in_order_on_the_documented_ports(
    make_up: StackSettings,
) -> None:
    stack = components(make_up)
    assert [c.name for c in stack] == [
        "slacksink",
        "userd",
        "orderd",
        "alertmanager",
        "blackbox",
        "prometheus",
        "loadgen",
    ]
    assert {c.name: dict(c.ports) for c in stack} == {
        "slacksink": {"http": 9095},
        "userd": {"gRPC": 50051, "metrics": 9091},
        "orderd": {"gRPC": 50052, "metrics": 9092},
        "alertmanager": {"http": 9093},
        "blackbox": {"http": 9115},
        "prometheus": {"http": 9090},
        "loadgen": {"metrics": 9097},
    }
    orderd = next(c for c in stack if c.name == "orderd")
    assert orderd.env["USERD_ADDR"] == "127.0.0.1:50051"
    assert orderd.env["FAULT_INJECTION_ENABLED"] == "true"
    assert orderd.env["DATABASE_URL"] == f"sqlite+aiosqlite:///{up.DATA / 'orderd.sqlite3'}"
    prometheus = next(c for c in stack if c.name == "prometheus")
    assert "--web.enable-lifecycle" in prometheus.argv
    assert "--enable-feature=exemplar-storage" in prometheus.argv
    assert make_up.run_dir == up.RUN


def test_loadgen_rps_and_no_loadgen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        up, "find_binaries", lambda: (BINARIES.prometheus, BINARIES.alertmanager, BINARIES.blackbox)
    )
    monkeypatch.setattr(up, "find_grafana", lambda _env: None)
    settings = up.native_settings({"LOADGEN_RPS": "12"})
    loadgen = components(settings)[-1]
    assert loadgen.argv[loadgen.argv.index("--rps") + 1] == "12"
    assert "loadgen" not in [c.name for c in components(up.native_settings({}, with_loadgen=False))]


def test_two_userd_replicas_are_two_targets_of_one_job_and_orderd_balances_over_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        up, "find_binaries", lambda: (BINARIES.prometheus, BINARIES.alertmanager, BINARIES.blackbox)
    )
    monkeypatch.setattr(up, "find_grafana", lambda _env: None)
    settings = up.native_settings({"USERD_REPLICAS": "2"})
    stack = by_name(settings)
    assert stack["userd-2"]["ports"] == {"gRPC": 50061, "metrics": 9191}
    assert stack["orderd"]["env"]["USERD_ADDR"] == "ipv4:127.0.0.1:50051,127.0.0.1:50061"
    assert settings.ports.scrape_targets()["userd"] == ["127.0.0.1:9091", "127.0.0.1:9191"]
    with pytest.raises(pre.StackError, match="USERD_REPLICAS=3"):
        up.native_settings({"USERD_REPLICAS": "3"})


def test_the_end_to_end_stack_is_make_ups_but_for_its_documented_overrides(
    make_up: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The e2e fixture may differ from `make up` in settings a user can choose too (ports, folders,
    the load rate) and in TEST_OVERRIDES; in nothing else."""
    monkeypatch.setattr(live_stack, "binaries", lambda: BINARIES)
    fixture = live_stack.live_settings(Path("/tmp/e2e"), Ports(9, (), ServicePorts(9, 9), 9, 9, 9, 9, 9))
    same_settings = dataclasses.replace(
        fixture, ports=make_up.ports, run_dir=make_up.run_dir, data_dir=make_up.data_dir
    )
    as_make_up_with_overrides = dataclasses.replace(
        make_up, loadgen_rps=fixture.loadgen_rps, overrides=fixture.overrides
    )
    assert describe(components(same_settings)) == describe(components(as_make_up_with_overrides))

    # And the overrides reach only what they name: service env keys and extra loadgen arguments.
    with_overrides = by_name(as_make_up_with_overrides)
    without = by_name(dataclasses.replace(as_make_up_with_overrides, overrides=StackOverrides()))
    for name in with_overrides:
        a, b = dict(with_overrides[name]), dict(without[name])
        if name in ("userd", "orderd"):
            env_a, env_b = a.pop("env"), b.pop("env")
            extra = {k: v for k, v in env_a.items() if env_b.get(k) != v}
            assert extra == dict(fixture.overrides.service_env)
        if name == "loadgen":
            argv_a, argv_b = a.pop("argv"), b.pop("argv")
            assert argv_a == [*argv_b, *fixture.overrides.loadgen_args]
        assert a == b, name


def test_main_prints_a_failed_install_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing_install() -> tuple[str, str]:
        raise pre.StackError(
            "`apt-get install -y -qq --no-install-recommends prometheus` failed with exit code 100"
        )

    monkeypatch.setattr(up, "docker_engine_answers", lambda: False)
    monkeypatch.setattr(up, "read_dotenv", lambda _path: {"JWT_SECRET": "x" * 32})
    monkeypatch.setattr(up, "find_binaries", failing_install)
    assert up.main(["up", "--mode", "native"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("make up: `apt-get install")
    assert err.count("\n") == 1


def test_env_adds_missing_secrets_only_owner_readable_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("JWT_SECRET=keep-me\nLOADGEN_RPS=9")
    assert ensure_secrets(path) == [name for name in SECRETS if name != "JWT_SECRET"]
    values = read_dotenv(path)
    assert values["JWT_SECRET"] == "keep-me"
    assert values["LOADGEN_RPS"] == "9"
    assert all(len(values[name]) == 64 for name in SECRETS if name != "JWT_SECRET")
    assert ensure_secrets(path) == []
    fresh = tmp_path / "fresh.env"
    assert ensure_secrets(fresh) == list(SECRETS)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_hold_ends_by_itself(tmp_path: Path) -> None:
    write_hold(tmp_path, "userd", 60)
    until = held_until(tmp_path, "userd")
    assert until is not None and 55 < until - time.time() <= 60.01
    write_hold(tmp_path, "userd", -1)
    assert held_until(tmp_path, "userd") is None
    assert not (tmp_path / "hold" / "userd").exists()
    assert held_until(tmp_path, "orderd") is None


def test_a_pid_file_is_trusted_only_for_the_process_that_wrote_it(tmp_path: Path) -> None:
    mine = tmp_path / "me.pid"
    write_pid_file(mine, os.getpid())
    assert owned_pid(mine) == os.getpid()
    # The same pid number, but another start time: a recycled pid is never signalled.
    pid, started = mine.read_text().split()
    mine.write_text(f"{pid} {int(started) + 1}\n")
    assert owned_pid(mine) is None
    # An old-style file (pid only), garbage, or no file at all.
    mine.write_text(f"{pid}\n")
    assert owned_pid(mine) is None
    mine.write_text("not a pid")
    assert owned_pid(mine) is None
    assert owned_pid(tmp_path / "missing.pid") is None


def test_a_local_grafana_is_found_with_its_home(tmp_path: Path) -> None:
    home = tmp_path / "grafana-11.6.1"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "defaults.ini").write_text("")
    (home / "bin").mkdir()
    binary = home / "bin" / "grafana"

    def which(name: str) -> str | None:
        return str(binary) if name == "grafana" else None

    assert pre.find_grafana({}, which) == (str(binary), "server", "--homepath", str(home))
    assert pre.find_grafana({}, lambda _name: None) is None
    # A binary whose home cannot be found is not started half-configured.
    (home / "conf" / "defaults.ini").unlink()
    assert pre.find_grafana({"GRAFANA_HOME": str(tmp_path)}, which) is None


def test_a_local_grafana_gets_the_compose_dashboards_and_data_sources_on_loopback(
    make_up: StackSettings, tmp_path: Path
) -> None:
    import yaml
    from nativestack.components import ROOT, write_grafana_provisioning

    grafana = ("/opt/grafana/bin/grafana", "server", "--homepath", "/opt/grafana")
    settings = dataclasses.replace(make_up, binaries=dataclasses.replace(BINARIES, grafana=grafana))
    stack = by_name(settings)
    assert list(stack)[-2:] == ["grafana", "loadgen"]
    assert stack["grafana"]["argv"] == list(grafana)
    assert stack["grafana"]["ports"] == {"http": 3000}
    assert stack["grafana"]["env"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in stack["grafana"]["env"]  # from the base environment only

    write_grafana_provisioning(settings, tmp_path)
    native = yaml.safe_load((tmp_path / "datasources" / "datasources.yml").read_text())["datasources"]
    repo = yaml.safe_load((ROOT / "grafana/provisioning/datasources/datasources.yml").read_text())[
        "datasources"
    ]
    by_uid = {source["uid"]: source for source in repo}
    assert [s["url"] for s in native] == ["http://127.0.0.1:9090", "http://127.0.0.1:9093"]
    for source in native:
        expected = dict(by_uid[source["uid"]])
        expected["jsonData"] = {
            k: v for k, v in expected.get("jsonData", {}).items() if k != "exemplarTraceIdDestinations"
        }
        assert {**source, "url": ""} == {**expected, "url": ""}
    [provider] = yaml.safe_load((tmp_path / "dashboards" / "dashboards.yml").read_text())["providers"]
    [repo_provider] = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/dashboards.yml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == str(ROOT / "grafana" / "dashboards")
    assert {**provider, "options": {}} == {**repo_provider, "options": {}}


def test_the_grafana_admin_password_reaches_grafana_under_its_own_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("GRAFANA_ADMIN_PASSWORD=from-dotenv\n")
    monkeypatch.setattr(up, "DOTENV", dotenv)
    monkeypatch.delenv("GF_SECURITY_ADMIN_PASSWORD", raising=False)
    assert up.stack_env()["GF_SECURITY_ADMIN_PASSWORD"] == "from-dotenv"


def test_the_url_table_says_in_one_line_when_there_is_no_grafana(
    make_up: StackSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    up.print_table(components(make_up))
    lines = [line for line in capsys.readouterr().out.splitlines() if "Grafana" in line]
    assert len(lines) == 1 and "not installed" in lines[0] and "compose" in lines[0]
