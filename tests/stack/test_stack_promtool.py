"""promtool: the config is valid in the repo and in both run layouts, the rules are valid, and the rule
unit tests in prometheus/tests/ pass."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from stackconfig import targets_on, write_blackbox_targets, write_prometheus_targets

from tests.stack.support import PROMETHEUS_DIR

pytestmark = pytest.mark.prometheus

RULE_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_config_in_repo_is_valid(promtool: str) -> None:
    # Target files do not exist in the repo (they are per environment): promtool only warns about that.
    result = run(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def native_layout(run_dir: Path) -> Path:
    """What `make up` builds: symlinks to prometheus.yml and rules/ next to generated targets/."""
    run_dir.mkdir()
    (run_dir / "prometheus.yml").symlink_to(PROMETHEUS_DIR / "prometheus.yml")
    (run_dir / "rules").symlink_to(PROMETHEUS_DIR / "rules", target_is_directory=True)
    write_prometheus_targets(run_dir / "targets", targets_on(lambda _job: "127.0.0.1"))
    write_blackbox_targets(run_dir / "targets", {"userd": ["127.0.0.1:50051"]}, "127.0.0.1:9115")
    return run_dir / "prometheus.yml"


def compose_layout(run_dir: Path) -> Path:
    """What compose mounts: the compose config at /etc/prometheus, targets/compose/ at
    /etc/prometheus/targets."""
    run_dir.mkdir()
    shutil.copy(PROMETHEUS_DIR / "prometheus.compose.yml", run_dir / "prometheus.yml")
    shutil.copytree(PROMETHEUS_DIR / "rules", run_dir / "rules")
    shutil.copytree(PROMETHEUS_DIR / "targets" / "compose", run_dir / "targets")
    return run_dir / "prometheus.yml"


@pytest.mark.parametrize("layout", [native_layout, compose_layout], ids=["native", "compose"])
def test_config_resolves_every_file_in_run_layouts(
    promtool: str, tmp_path: Path, layout: Callable[[Path], Path]
) -> None:
    config = layout(tmp_path / "run")
    result = run(promtool, "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "WARNING" not in output, output
    assert "2 rule files found" in output


def test_rules_are_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TEST_FILES, ids=[path.name for path in RULE_TEST_FILES])
def test_rule_unit_tests_pass(promtool: str, test_file: Path) -> None:
    result = run(promtool, "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """The harness notices a broken rule: ServiceDown with `for: 20s` must fail the 25s-down case."""
    rules = tmp_path / "rules"
    shutil.copytree(PROMETHEUS_DIR / "rules", rules)
    alerts = rules / "alerts.yml"
    text = alerts.read_text()
    service_down = re.search(r"alert: ServiceDown\n(?:.*\n)*?        for: 30s", text)
    assert service_down is not None
    alerts.write_text(text.replace(service_down.group(0), service_down.group(0).replace("30s", "20s")))
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copy(PROMETHEUS_DIR / "tests" / "alerts_grpc_test.yml", tests)

    result = run(promtool, "test", "rules", str(tests / "alerts_grpc_test.yml"))

    assert result.returncode != 0
    assert "ServiceDown" in result.stdout + result.stderr
