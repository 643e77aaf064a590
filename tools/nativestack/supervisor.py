"""Runs the native stack's components as child processes, the way an orchestrator would.

- Start: in table order, each once the ones before it are healthy; a stop request (Ctrl-C) during
  start-up takes effect at once.
- Watch: a child that exits is reported on the console (name, exit code, its log) and restarted with
  backoff (1 s, 2 s, 4 s … 30 s; back to 1 s once it stayed up a minute). The rest keeps running: a
  monitoring stack must outlive what it monitors.
- Hold: `hold(name, seconds)` (or `make chaos-down`, through a marker file under `<run>/hold/`) stops
  a component on purpose and keeps it down until the time is up, then starts it again.
- Stop: every child in reverse order, SIGTERM then SIGKILL after a timeout.

Each child's pid file (`<run>/pids/<name>.pid`) records the pid with the process's start time, so
`make down` signals a pid only while it still names the process that was started (`owned_pid`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from nativestack.components import Component

READY_TIMEOUT_SECONDS: Final = 90.0
STOP_TIMEOUT_SECONDS: Final = 15.0
WATCH_INTERVAL_SECONDS: Final = 0.5
MAX_BACKOFF_SECONDS: Final = 30.0
# Up this long, a restarted component's next failure starts the backoff from 1 s again.
STABLE_SECONDS: Final = 60.0
COLORS: Final = ("36", "33", "35", "32", "34", "31", "37")

Say = Callable[[str], None]


class StartError(RuntimeError):
    """A component did not become healthy during start-up; the message says which and where to look."""


class StopRequest:
    """Set by signal handlers (or a test), polled by the start-up and watch loops. Not a
    threading.Event: Event.set() takes a lock that the interrupted main thread may be holding inside
    Event.wait(), and a handler runs on that same thread, so it could deadlock."""

    POLL_SECONDS = 0.1

    def __init__(self) -> None:
        self.signum: int | None = None

    def set(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum

    def is_set(self) -> bool:
        return self.signum is not None

    def wait(self, seconds: float) -> bool:
        """Sleeps up to `seconds`; True as soon as a stop is requested (within POLL_SECONDS)."""
        deadline = time.monotonic() + seconds
        while not self.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, self.POLL_SECONDS))
        return True


def say(message: str) -> None:
    """print() that survives a closed terminal: after SIGHUP, writing to it may fail with EIO."""
    with contextlib.suppress(OSError):
        print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# pid files that can be trusted


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]


def write_pid_file(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {start_time(pid) or '?'}\n")


def owned_pid(path: Path) -> int | None:
    """The pid in `path` if that process is still the one the file was written for, else None (the
    process is gone, or the pid now belongs to something else)."""
    try:
        pid_text, _, started = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    now = start_time(pid)
    if now is None or not started or now != started:
        return None
    return pid


# ---------------------------------------------------------------------------------------------
# The supervisor


@dataclass
class _Child:
    component: Component
    color: str
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    held: bool = False
    awaiting_ready: bool = False
    pump: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self,
        stack: Sequence[Component],
        run_dir: Path,
        base_env: Mapping[str, str],
        *,
        echo: bool = True,
        report: Say = say,
    ) -> None:
        self._children = {c.name: _Child(c, COLORS[i % len(COLORS)]) for i, c in enumerate(stack)}
        self._order = [c.name for c in stack]
        self._run = run_dir
        self._base_env = dict(base_env)
        self._echo = echo
        self._report = report
        self._lock = threading.RLock()
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (run_dir / "pids").mkdir(parents=True, exist_ok=True)
        (run_dir / "hold").mkdir(parents=True, exist_ok=True)

    # -- queries -------------------------------------------------------------------------------------

    def process(self, name: str) -> subprocess.Popen[bytes] | None:
        return self._children[name].proc

    def pid(self, name: str) -> int:
        proc = self._children[name].proc
        if proc is None:
            raise KeyError(f"{name} is not running")
        return proc.pid

    def running(self, name: str) -> bool:
        proc = self._children[name].proc
        return proc is not None and proc.poll() is None

    def log_path(self, name: str) -> Path:
        return self._run / "logs" / f"{name}.log"

    # -- starting ------------------------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        component = child.component
        proc = subprocess.Popen(
            component.argv,
            cwd=component.cwd,
            env={**self._base_env, **component.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own session: Ctrl-C reaches only the supervisor, which then stops children in order.
            start_new_session=True,
        )
        child.proc = proc
        child.started_at = time.monotonic()
        child.restart_at = None
        write_pid_file(self._run / "pids" / f"{component.name}.pid", proc.pid)
        assert proc.stdout is not None
        child.pump = threading.Thread(
            target=self._pump, args=(component.name, child.color, proc.stdout), daemon=True
        )
        child.pump.start()

    def _pump(self, name: str, color: str, stream: IO[bytes]) -> None:
        prefix = f"\033[{color}m{name:>12}\033[0m | " if sys.stdout.isatty() else f"{name:>12} | "
        echo = self._echo
        with self.log_path(name).open("ab") as log:
            for line in iter(stream.readline, b""):
                log.write(line)
                log.flush()
                if echo:
                    try:
                        sys.stdout.write(prefix + line.decode(errors="replace"))
                        sys.stdout.flush()
                    except OSError:
                        # The terminal is gone (SIGHUP): keep draining the pipe into the log, or a
                        # child blocks on a full pipe and cannot shut down.
                        echo = False

    def wait_ready(self, name: str, deadline: float, stopping: StopRequest) -> bool:
        """True once healthy; False as soon as a stop is requested; StartError if the process exits
        or the deadline passes."""
        child = self._children[name]
        while time.monotonic() < deadline:
            if stopping.is_set():
                return False
            if child.proc is not None and child.proc.poll() is not None:
                raise StartError(
                    f"{name} exited with code {child.proc.returncode} during start-up; "
                    f"see {self.log_path(name)}"
                )
            if child.component.ready.check():
                return True
            if stopping.wait(0.25):
                return False
        raise StartError(f"{name} not healthy after {READY_TIMEOUT_SECONDS:.0f}s; see {self.log_path(name)}")

    def start_all(self, stopping: StopRequest, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """Starts the components in order, each once the one before is healthy; False when a stop
        comes first (the caller stops whatever did start)."""
        deadline = time.monotonic() + timeout
        for name in self._order:
            if stopping.is_set():
                return False
            with self._lock:
                self._spawn(self._children[name])
            if not self.wait_ready(name, deadline, stopping):
                return False
        return True

    # -- watching ------------------------------------------------------------------------------------

    def hold(self, name: str, seconds: float) -> None:
        """Stop `name` now and keep it down for `seconds` (then it is started again)."""
        if name not in self._children:
            raise KeyError(f"no component {name!r}; the stack has {', '.join(self._order)}")
        write_hold(self._run, name, seconds)
        self.tick()

    def release(self, name: str) -> None:
        (self._run / "hold" / name).unlink(missing_ok=True)
        self.tick()

    def tick(self) -> None:
        """One round of supervision: holds applied or lifted, exits reported, restarts made."""
        now = time.monotonic()
        with self._lock:
            for name in self._order:
                child = self._children[name]
                until = held_until(self._run, name)
                if until is not None:
                    if not child.held:
                        child.held = True
                        self._report(f"supervisor: holding {name} down for {until - time.time():.0f} s")
                        self._stop_child(child)
                    continue
                if child.held:
                    child.held = False
                    child.failures = 0
                    self._report(f"supervisor: hold on {name} over, starting it")
                    self._spawn(child)
                    child.awaiting_ready = True
                    continue
                proc = child.proc
                if proc is None:
                    continue
                if proc.poll() is not None and child.restart_at is None:
                    if now - child.started_at >= STABLE_SECONDS:
                        child.failures = 0
                    child.failures += 1
                    delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (child.failures - 1))
                    child.restart_at = now + delay
                    self._report(
                        f"supervisor: {name} exited with code {proc.returncode}; restarting in {delay:.0f} s "
                        f"(log: {self.log_path(name)})"
                    )
                    continue
                if child.restart_at is not None and now >= child.restart_at:
                    self._spawn(child)
                    child.awaiting_ready = True
                    continue
                if child.awaiting_ready and proc.poll() is None and child.component.ready.check():
                    child.awaiting_ready = False
                    self._report(f"supervisor: {name} is back and healthy")

    def watch(self, stopping: StopRequest, interval: float = WATCH_INTERVAL_SECONDS) -> None:
        """Supervises until a stop is requested."""
        while not stopping.wait(interval):
            self.tick()

    # -- stopping ------------------------------------------------------------------------------------

    @staticmethod
    def _stop_child(child: _Child, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        proc = child.proc
        child.restart_at = None
        child.awaiting_ready = False
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Sends `sig` to the component (as `kill -9 <pid>` would); the watch loop restarts it."""
        proc = self._children[name].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait()

    def stop_all(self) -> None:
        with self._lock:
            for name in reversed(self._order):
                child = self._children[name]
                self._stop_child(child)
                child.proc = None
                (self._run / "pids" / f"{name}.pid").unlink(missing_ok=True)
                (self._run / "hold" / name).unlink(missing_ok=True)


def write_hold(run_dir: Path, name: str, seconds: float) -> None:
    path = run_dir / "hold" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time.time() + seconds:.3f}\n")


def held_until(run_dir: Path, name: str) -> float | None:
    """The wall-clock time a hold on `name` ends, or None when it is not held (an expired marker is
    removed)."""
    path = run_dir / "hold" / name
    try:
        until = float(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if until <= time.time():
        path.unlink(missing_ok=True)
        return None
    return until


def signal_owned(pid_file: Path, sig: int = signal.SIGTERM) -> bool:
    """Signals the pid in `pid_file` only if it still names the process that wrote it; removes the
    file either way. True when a signal was sent."""
    pid = owned_pid(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def running(stack: Sequence[Component], run_dir: Path, base_env: Mapping[str, str]) -> Iterator[Supervisor]:
    """`stack` started in order (healthy) for the length of the block, then stopped; for tools that
    need part of the stack, such as the benchmarks (unsupervised: nothing is restarted)."""
    supervisor = Supervisor(stack, run_dir, base_env, echo=False, report=lambda _message: None)
    try:
        if not supervisor.start_all(StopRequest()):
            raise StartError("start-up interrupted")
        yield supervisor
    finally:
        supervisor.stop_all()
