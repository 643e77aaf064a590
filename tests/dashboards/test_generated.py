"""grafana/dashboards/*.json is exactly what tools/gen_dashboards.py writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gen_dashboards

from tests.dashboards.model import DASHBOARDS_DIR, ROOT


def test_committed_dashboards_match_the_generator() -> None:
    expected = gen_dashboards.rendered()
    committed = {path.name: path.read_text(encoding="utf-8") for path in DASHBOARDS_DIR.glob("*.json")}
    assert sorted(committed) == sorted(expected)
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert stale == [], f"out of date: {stale}; run `make dashboards`"


def test_check_mode_reports_drift_and_writes_nothing(tmp_path: Path) -> None:
    script = str(ROOT / "tools" / "gen_dashboards.py")
    written = subprocess.run(
        [sys.executable, script, "--out", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert written.returncode == 0, written.stderr
    clean = subprocess.run(
        [sys.executable, script, "--check", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert clean.returncode == 0, clean.stderr

    edited = tmp_path / "business.json"
    edited.write_text(
        edited.read_text(encoding="utf-8").replace("Logins by result", "Logins"), encoding="utf-8"
    )
    before = edited.read_text(encoding="utf-8")
    drift = subprocess.run(
        [sys.executable, script, "--check", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert drift.returncode == 1
    assert "business.json" in drift.stderr
    assert edited.read_text(encoding="utf-8") == before
