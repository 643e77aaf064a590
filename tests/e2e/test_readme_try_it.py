"""The README's "Try it" block runs as written against the native stack: the same commands, with only
the documented default addresses replaced by the test stack's (it runs on free ports)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.live_stack import LiveStack, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def try_it_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Try it") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "no sh block under ### Try it"
    return match.group(1)


def test_the_try_it_block_runs(live_stack: LiveStack) -> None:
    wait_until(lambda: bool(live_stack.query('up{job="orderd"} == 1')), 60, "orderd scraped")
    ports = live_stack.ports
    script = (
        try_it_block()
        .replace(
            "tools/call.py",
            f"tools/call.py --userd {live_stack.userd_target} --orderd {live_stack.orderd_target}",
        )
        .replace("127.0.0.1:50051", live_stack.userd_target)
        .replace("127.0.0.1:50052", live_stack.orderd_target)
        .replace("127.0.0.1:9092", f"127.0.0.1:{ports.orderd.metrics}")
        .replace("127.0.0.1:9091", f"127.0.0.1:{ports.userd[0].metrics}")
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"total_cents": "2500"' in result.stdout
    assert 'orderd_service_total_orders_total{result="success"' in result.stdout
