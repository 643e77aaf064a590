"""tools/up.py with real ports, signals and processes, none of them the stack's: a taken port names
the Debian unit that holds it, and SIGINT/SIGTERM/SIGHUP/SIGQUIT stop the stack, also while a
component is still starting."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import up

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else listens on (an ephemeral one, not the stack's)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_check_ports_suspects_only_the_unit_whose_port_is_taken(
    monkeypatch: pytest.MonkeyPatch, held_port: int
) -> None:
    asked: list[list[str]] = []

    def active(units: list[str]) -> list[str]:
        asked.append(list(units))
        return list(units)

    monkeypatch.setattr(up, "DEBIAN_UNIT_PORTS", {"prometheus": held_port, "prometheus-alertmanager": 1})
    monkeypatch.setattr(up, "active_units", active)
    stack = [up.Component("prometheus", [], {"http": held_port}, lambda: True)]
    with pytest.raises(up.StackError) as caught:
        up.check_ports(stack)
    assert asked == [["prometheus"]]
    assert f"port already in use: {held_port} (prometheus http)" in str(caught.value)
    assert "`sudo systemctl disable --now prometheus`" in str(caught.value)


# --- stopping -----------------------------------------------------------------------------------------


@pytest.fixture
def restore_signal_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in up.STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_signal_handlers")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_every_stop_signal_requests_a_stop(sig: signal.Signals) -> None:
    stopping = up.StopRequest()
    up.stop_on_signals(stopping)
    os.kill(os.getpid(), sig)
    assert stopping.wait(2)
    assert stopping.signum == sig


def never_ready() -> up.Component:
    return up.Component("slow", [], {}, lambda: False)


def set_later(stopping: up.StopRequest, seconds: float) -> None:
    threading.Timer(seconds, stopping.set).start()


def test_wait_ready_returns_false_promptly_on_stop() -> None:
    stopping = up.StopRequest()
    set_later(stopping, 0.3)
    started = time.monotonic()
    assert up.wait_ready(never_ready(), time.monotonic() + 60, stopping) is False
    assert time.monotonic() - started < 1.5


def test_wait_ready_true_once_ready_and_timeout_still_raises() -> None:
    assert up.wait_ready(up.Component("ok", [], {}, lambda: True), time.monotonic() + 5, up.StopRequest())
    with pytest.raises(up.StackError, match="slow not healthy"):
        up.wait_ready(never_ready(), time.monotonic() + 0.3, up.StopRequest())


# Runs up.py's own start-up and stop path in a separate process (so a real signal can be sent to
# it) with a child that never becomes ready and a run directory under tmp_path.
DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import up
up.RUN = Path(sys.argv[2])
up.PID_FILE = up.RUN / "stack.pid"
(up.RUN / "logs").mkdir(parents=True)
(up.RUN / "pids").mkdir()
child = [sys.executable, "-c", "import time; time.sleep(120)"]
stack = [up.Component("sleeper", child, {}, lambda: False)]
stopping = up.StopRequest()
up.stop_on_signals(stopping)
try:
    print("started" if up.start_all(stack, {}, stopping) else "interrupted", flush=True)
finally:
    up.stop_all(stack)
"""


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_a_stop_signal_during_start_up_stops_the_children_promptly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    run_dir = tmp_path / "run"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(ROOT / "tools"), str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pid_file = run_dir / "pids" / "sleeper.pid"
        wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", 15)
        child = int(pid_file.read_text())
        time.sleep(0.3)  # inside wait_ready now: the child is never ready
        sent = time.monotonic()
        driver.send_signal(sig)
        output, _ = driver.communicate(timeout=up.STOP_TIMEOUT_SECONDS)
        assert time.monotonic() - sent < 5, "waited for the readiness timeout instead of stopping"
        assert driver.returncode == 0, output
        assert output.strip() == "interrupted"
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
