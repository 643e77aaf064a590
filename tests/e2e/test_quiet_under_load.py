"""End to end: ordinary traffic at twenty times `make up`'s rate pages no one, and an attack still does.

The native stack as `make up` runs it, with its background load generator at 20x the default rate,
100 requests/s (the steady mix, uncapped: typos and other caller errors come at their share). For
QUIET_MINUTES (3 in `make test`, 10 in `make quiet-check`), Alertmanager holds nothing but the Watchdog
and the Slack sink receives nothing else, and no right password is refused; then the `bruteforce`
scenario fires InvalidLoginSpike within the bound `make demo-alerts` states."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from demo_alerts import DEFAULT_LIMIT_SECONDS

from tests.e2e.alerts import alertmanager_alerts, arrived, titles
from tests.support.live_stack import (
    FAULT_TOKEN,
    LiveStack,
    live_settings,
    start_live_stack,
    wait_until,
)

pytestmark = pytest.mark.e2e

DEFAULT_RPS = 5.0  # `make up`'s LOADGEN_RPS
SCALE = 20
QUIET_SECONDS = 60.0 * float(os.environ.get("QUIET_MINUTES", "3"))


@pytest.fixture(scope="module")
def busy_stack() -> Iterator[LiveStack]:
    root = Path(tempfile.mkdtemp(prefix="quiet-stack-"))
    settings = dataclasses.replace(live_settings(root), loadgen_rps=f"{SCALE * DEFAULT_RPS:g}")
    stack = start_live_stack(root, settings)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_twenty_times_the_steady_rate_pages_no_one_and_bruteforce_does(busy_stack: LiveStack) -> None:
    stack = busy_stack
    rps = SCALE * DEFAULT_RPS
    wait_until(
        lambda: bool(stack.query(f"sum(rate(loadgen_requests_total[1m])) > {0.8 * rps:g}")),
        180,
        f"loadgen at {rps:g} requests/s",
    )
    quiet_from = time.monotonic()
    while time.monotonic() - quiet_from < QUIET_SECONDS:
        active = sorted({a["labels"]["alertname"] for a in alertmanager_alerts(stack)} - {"Watchdog"})
        assert active == [], (
            f"firing under ordinary traffic after {time.monotonic() - quiet_from:.0f}s: {active}"
        )
        sent = [t for t in titles(stack) if "Watchdog" not in t]
        assert sent == [], f"the Slack sink received {sent}"
        time.sleep(5)
    window = f"{QUIET_SECONDS:.0f}s"
    caller_errors = stack.query(f'sum(increase(loadgen_requests_total{{code!="OK"}}[{window}]))')
    typos = stack.query(
        f'sum(increase(userd_service_login_handler_total{{result="invalid_password"}}[{window}]))'
    )
    refused = stack.query(f'sum(increase(userd_service_login_handler_total{{result="throttled"}}[{window}]))')

    def shown(result: list[dict[str, Any]]) -> str:
        return f"{float(result[0]['value'][1]):.0f}" if result else "none"

    print(
        f"\nquiet for {QUIET_SECONDS:.0f}s at {rps:g} requests/s: caller errors {shown(caller_errors)}, "
        f"typos {shown(typos)}, refused by the throttle {shown(refused)}"
    )
    assert shown(refused) in ("0", "none"), "the throttle refused ordinary logins"

    env = {**os.environ, "FAULT_INJECTION_TOKEN": FAULT_TOKEN}
    started = time.monotonic()
    attack = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "loadgen"),
            "--scenario",
            "bruteforce",
            "--rps",
            "10",
            "--duration",
            f"{DEFAULT_LIMIT_SECONDS:.0f}",
            "--target-userd",
            stack.userd_target,
            "--target-orderd",
            stack.orderd_target,
            "--pool-file",
            str(stack.root / "data" / "bruteforce-users.json"),
            "--users",
            "6",
            "--metrics-addr",
            "0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: arrived(stack, "InvalidLoginSpike on userd"), DEFAULT_LIMIT_SECONDS, "InvalidLoginSpike"
        )
    finally:
        attack.terminate()
        attack.wait(timeout=30)
    print(f"bruteforce: InvalidLoginSpike reached Slack after {time.monotonic() - started:.0f}s")
