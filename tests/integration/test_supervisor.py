"""tools/nativestack's supervisor and prerequisites with real ports, signals and processes (none of
them the stack's): a taken port names the Debian unit that holds it; every stop signal stops the
stack, also during start-up; a child that exits is reported and restarted while the rest keeps
running; a held child stays down until its hold ends; `make down` signals only what it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import up
from nativestack import prerequisites as pre
from nativestack.components import Component
from nativestack.supervisor import (
    StartError,
    StopRequest,
    Supervisor,
    signal_owned,
    write_hold,
    write_pid_file,
)

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")


@dataclass(frozen=True)
class Always:
    answer: bool

    def check(self) -> bool:
        return self.answer


@dataclass(frozen=True)
class FileExists:
    """Ready once the child wrote its marker file."""

    path: Path

    def check(self) -> bool:
        return self.path.exists()


def wait_for(check: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: timed out"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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

    monkeypatch.setattr(pre, "DEBIAN_UNIT_PORTS", {"prometheus": held_port, "prometheus-alertmanager": 1})
    monkeypatch.setattr(pre, "active_units", active)
    stack = [Component("prometheus", (), {"http": held_port}, Always(True))]
    with pytest.raises(pre.StackError) as caught:
        pre.check_ports(stack)
    assert asked == [["prometheus"]]
    assert f"port already in use: {held_port} (prometheus http)" in str(caught.value)
    assert "`sudo systemctl disable --now prometheus`" in str(caught.value)


# --- stopping ---------------------------------------------------------------------------------------


@pytest.fixture
def restore_signal_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in up.STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_signal_handlers")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_every_stop_signal_requests_a_stop(sig: signal.Signals) -> None:
    stopping = StopRequest()
    up.stop_on_signals(stopping)
    os.kill(os.getpid(), sig)
    assert stopping.wait(2)
    assert stopping.signum == sig


def supervisor_of(tmp_path: Path, *components: Component) -> Supervisor:
    return Supervisor(components, tmp_path / "run", dict(os.environ), echo=False, report=lambda _m: None)


def test_wait_ready_returns_false_promptly_on_stop(tmp_path: Path) -> None:
    supervisor = supervisor_of(tmp_path, Component("slow", SLEEPER, {}, Always(False)))
    stopping = StopRequest()
    threading.Timer(0.3, stopping.set).start()
    started = time.monotonic()
    try:
        assert supervisor.start_all(stopping, timeout=60) is False
        assert time.monotonic() - started < 1.5
    finally:
        supervisor.stop_all()


def test_start_up_times_out_and_a_child_that_dies_is_named(tmp_path: Path) -> None:
    supervisor = supervisor_of(tmp_path, Component("slow", SLEEPER, {}, Always(False)))
    try:
        with pytest.raises(StartError, match="slow not healthy"):
            supervisor.start_all(StopRequest(), timeout=0.3)
    finally:
        supervisor.stop_all()
    dying = supervisor_of(tmp_path, Component("dies", (sys.executable, "-c", "exit(3)"), {}, Always(False)))
    with pytest.raises(StartError, match="dies exited with code 3 during start-up"):
        dying.start_all(StopRequest(), timeout=30)


# Runs up.py's own signal handling and the supervisor's start-up in a separate process (so a real
# signal can be sent to it) with a child that never becomes ready.
DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import up
from nativestack.components import Component
from nativestack.supervisor import StopRequest, Supervisor

class Never:
    def check(self):
        return False

child = (sys.executable, "-c", "import time; time.sleep(120)")
supervisor = Supervisor([Component("sleeper", child, {}, Never())], Path(sys.argv[2]), {}, echo=False)
stopping = StopRequest()
up.stop_on_signals(stopping)
try:
    print("started" if supervisor.start_all(stopping) else "interrupted", flush=True)
finally:
    supervisor.stop_all()
"""


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
        wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", 15, "child started")
        child = int(pid_file.read_text().split()[0])
        sent = time.monotonic()
        driver.send_signal(sig)
        output, _ = driver.communicate(timeout=30)
        assert time.monotonic() - sent < 5, "waited for the readiness timeout instead of stopping"
        assert driver.returncode == 0, output
        assert output.strip() == "interrupted"
        assert not alive(child)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


# --- keeping the stack up ----------------------------------------------------------------------------


def marker_child(path: Path) -> tuple[str, ...]:
    """A child that is ready once it wrote `path` (a new file each start, renamed into place so a
    reader never sees it empty), then sleeps."""
    code = (
        f"import pathlib, time, os; p = pathlib.Path({str(path)!r}); t = p.with_suffix('.tmp'); "
        "t.write_text(str(os.getpid())); t.rename(p); time.sleep(120)"
    )
    return (sys.executable, "-c", code)


def test_a_killed_child_is_reported_and_restarted_and_the_rest_keeps_running(tmp_path: Path) -> None:
    reports: list[str] = []
    a, b = tmp_path / "a.ready", tmp_path / "b.ready"
    supervisor = Supervisor(
        [
            Component("a", marker_child(a), {}, FileExists(a)),
            Component("b", marker_child(b), {}, FileExists(b)),
        ],
        tmp_path / "run",
        dict(os.environ),
        echo=False,
        report=reports.append,
    )
    stopping = StopRequest()
    try:
        assert supervisor.start_all(stopping)
        watcher = threading.Thread(target=supervisor.watch, args=(stopping, 0.05), daemon=True)
        watcher.start()
        first_a, b_pid = int(a.read_text()), int(b.read_text())
        a.unlink()
        os.kill(first_a, signal.SIGKILL)
        wait_for(lambda: a.exists() and int(a.read_text()) != first_a, 10, "a restarted")
        wait_for(lambda: any("a is back and healthy" in r for r in reports), 10, "a reported healthy")
        assert any("a exited with code -9; restarting in 1 s" in r for r in reports), reports
        assert alive(b_pid) and supervisor.running("b")
    finally:
        stopping.set()
        supervisor.stop_all()
    assert not supervisor.running("a") and not supervisor.running("b")


def test_a_held_child_stays_down_until_its_hold_ends(tmp_path: Path) -> None:
    ready = tmp_path / "a.ready"
    reports: list[str] = []
    supervisor = Supervisor(
        [Component("a", marker_child(ready), {}, FileExists(ready))],
        tmp_path / "run",
        dict(os.environ),
        echo=False,
        report=reports.append,
    )
    stopping = StopRequest()
    try:
        assert supervisor.start_all(stopping)
        watcher = threading.Thread(target=supervisor.watch, args=(stopping, 0.05), daemon=True)
        watcher.start()
        first = int(ready.read_text())
        ready.unlink()
        # What `make chaos-down` writes (up.py hold), seen by the running supervisor.
        held_from = time.time()
        write_hold(tmp_path / "run", "a", 1.5)
        wait_for(lambda: not alive(first), 5, "held child stopped")
        wait_for(lambda: ready.exists(), 10, "started again after the hold")
        assert time.time() - held_from >= 1.5, "started again before the hold ended"
        assert int(ready.read_text()) != first
        assert any(r.startswith("supervisor: holding a down") for r in reports)
        assert any("hold on a over" in r for r in reports)
        assert not any("exited" in r for r in reports), "a hold is not a crash"
    finally:
        stopping.set()
        supervisor.stop_all()


def test_down_signals_only_a_process_it_started(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(SLEEPER)
    stranger = subprocess.Popen(SLEEPER)
    try:
        ours = tmp_path / "ours.pid"
        write_pid_file(ours, sleeper.pid)
        # A pid file left behind whose pid now names another process: the start time differs.
        stale = tmp_path / "stale.pid"
        stale.write_text(f"{stranger.pid} 1\n")
        assert signal_owned(stale) is False
        assert signal_owned(ours) is True
        assert sleeper.wait(timeout=10) == -signal.SIGTERM
        assert stranger.poll() is None
        assert not ours.exists() and not stale.exists()
    finally:
        for proc in (sleeper, stranger):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
