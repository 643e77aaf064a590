"""`make up` / `make down`: the whole demo on one machine.

With a Docker engine (and MODE=auto or docker) it hands over to `docker compose`. Otherwise it runs
every component as a local process on 127.0.0.1: the Slack sink, userd, orderd, Alertmanager,
Prometheus and the load generator; it writes the run-time config under .run/ (git-ignored), waits
until every component is healthy, prints the URLs and streams prefixed logs until Ctrl-C, then stops
the children in reverse order. `make up &` followed by `make down` works too (a pid file in .run/).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stackconfig import NotificationUrls, write_alertmanager_secrets, write_prometheus_targets

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
BIN = Path(sys.executable).parent
PID_FILE = RUN / "stack.pid"
READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
PROMETHEUS_PACKAGE = "prometheus"
ALERTMANAGER_PACKAGE = "prometheus-alertmanager"
# On a systemd host the Debian packages enable and start units of the same names, listening on the
# ports this stack needs.
DEBIAN_UNIT_PORTS = {PROMETHEUS_PACKAGE: 9090, ALERTMANAGER_PACKAGE: 9093}
# Exists only while systemd runs as PID 1 (sd_booted(3)); a container or chroot may have systemctl
# without it, and then `systemctl disable --now` fails.
SYSTEMD_RUN_DIR = Path("/run/systemd/system")
# Ctrl-C, `make down` (SIGTERM), a closed terminal (SIGHUP) and Ctrl-\ (SIGQUIT) all end a run the
# same way: the children are in their own sessions, so only this process hears any of them.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
COLORS = ("36", "33", "35", "32", "34", "31", "37")

Runner = Callable[..., subprocess.CompletedProcess[Any]]


class StackError(RuntimeError):
    """A problem the user can fix; printed as one line, exit 1."""


class StopRequest:
    """Set by the stop-signal handlers, polled by the start-up and run loops. Not a threading.Event:
    Event.set() takes a lock that the interrupted main thread may be holding inside Event.wait(), and
    a handler runs on that same thread, so it could deadlock."""

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


@dataclass
class Component:
    name: str
    argv: list[str]
    ports: dict[str, int]
    ready: Callable[[], bool]
    urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    proc: subprocess.Popen[bytes] | None = None


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.strip().startswith("#"):
                values[key.strip()] = value.strip()
    return values


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - fixed local URLs
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError):
            return False

    return check


def grpc_serving(port: int) -> Callable[[], bool]:
    def check() -> bool:
        result = subprocess.run(
            [str(BIN / "grpc-healthcheck"), f"127.0.0.1:{port}", "--timeout", "1"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    return check


def all_of(*checks: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: all(check() for check in checks)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
        )
    except subprocess.TimeoutExpired:
        return False


def which_any(names: Sequence[str]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def systemd_running() -> bool:
    return shutil.which("systemctl") is not None and SYSTEMD_RUN_DIR.is_dir()


def can_apt_install() -> bool:
    return Path("/etc/debian_version").exists() and os.geteuid() == 0 and shutil.which("apt-get") is not None


def install_commands(packages: Sequence[str], *, systemd: bool) -> list[list[str]]:
    """Installing `packages` for this stack: no Recommends (prometheus would pull in node-exporter and
    more daemons), and on a systemd host the units the packages just started are stopped and disabled
    again, since their daemons hold 9090/9093 (and would come back at every boot)."""
    commands = [["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]]
    if systemd:
        commands.append(["systemctl", "disable", "--now", *packages])
    return commands


def install_packages(packages: Sequence[str], *, systemd: bool, run: Runner = subprocess.run) -> None:
    print(f"installing the Debian package(s) {' '.join(packages)} …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Not fatal: offline or with one broken source, the lists already there may still do.
    run(["apt-get", "update", "-qq"], check=False, env=env)
    install, *disable = install_commands(packages, systemd=systemd)
    result = run(install, check=False, env=env)
    if result.returncode != 0:
        raise StackError(
            f"`{' '.join(install)}` failed with exit code {result.returncode} (its output is above); "
            f"fix that, or install {' '.join(packages)} yourself, and retry"
        )
    for command in disable:
        # Not fatal either: if a unit keeps running, check_ports says so and how to stop it.
        if run(command, check=False).returncode != 0:
            print(f"warning: `{' '.join(command)}` failed", file=sys.stderr, flush=True)


def find_binaries() -> tuple[str, str]:
    """(prometheus, alertmanager), installing whichever package is missing when that is possible."""
    wanted = {PROMETHEUS_PACKAGE: ("prometheus",), ALERTMANAGER_PACKAGE: ALERTMANAGER_BINARIES}
    missing = [package for package, names in wanted.items() if which_any(names) is None]
    if missing and can_apt_install():
        install_packages(missing, systemd=systemd_running())
    found: dict[str, str] = {}
    for package, names in wanted.items():
        path = which_any(names)
        if path is None:
            raise StackError(
                f"{names[0]} not found. Install it: on Debian/Ubuntu `sudo apt-get install {package}`; "
                f"elsewhere download it from the Prometheus project and put `{names[0]}` on PATH."
            )
        found[package] = path
    return found[PROMETHEUS_PACKAGE], found[ALERTMANAGER_PACKAGE]


def link(target: Path, at: Path) -> None:
    if at.is_symlink() or at.exists():
        at.unlink()
    at.symlink_to(os.path.relpath(target, at.parent))


def prepare_run_dir(env: dict[str, str]) -> None:
    """The same prometheus.yml and alertmanager.yml as compose, unedited: symlinked next to the
    files only a native run needs (targets on 127.0.0.1, webhook URLs)."""
    prom = RUN / "prometheus"
    prom.mkdir(parents=True, exist_ok=True)
    link(ROOT / "prometheus" / "prometheus.yml", prom / "prometheus.yml")
    link(ROOT / "prometheus" / "rules", prom / "rules")
    write_prometheus_targets(prom / "targets", lambda _job: "127.0.0.1")
    am = RUN / "alertmanager"
    am.mkdir(parents=True, exist_ok=True)
    link(ROOT / "alertmanager" / "alertmanager.yml", am / "alertmanager.yml")
    link(ROOT / "alertmanager" / "templates", am / "templates")
    write_alertmanager_secrets(am, NotificationUrls.from_env(env))
    (RUN / "logs").mkdir(exist_ok=True)


def components(env: dict[str, str], with_loadgen: bool) -> list[Component]:
    prometheus, alertmanager = find_binaries()
    service_env = {"FAULT_INJECTION_ENABLED": "true", **env}
    stack = [
        Component(
            "slacksink",
            [
                str(BIN / "slacksink"),
                "--addr",
                "127.0.0.1:9095",
                "--jsonl",
                str(RUN / "slack-messages.jsonl"),
            ],
            {"http": 9095},
            http_ok("http://127.0.0.1:9095/healthz"),
            {"Slack sink": "http://127.0.0.1:9095/"},
        ),
        Component(
            "userd",
            [str(BIN / "userd")],
            {"gRPC": 50051, "metrics": 9091},
            all_of(grpc_serving(50051), http_ok("http://127.0.0.1:9091/healthz")),
            {"userd gRPC": "127.0.0.1:50051", "userd metrics": "http://127.0.0.1:9091/metrics"},
            service_env,
        ),
        Component(
            "orderd",
            [str(BIN / "orderd")],
            {"gRPC": 50052, "metrics": 9092},
            all_of(grpc_serving(50052), http_ok("http://127.0.0.1:9092/healthz")),
            {"orderd gRPC": "127.0.0.1:50052", "orderd metrics": "http://127.0.0.1:9092/metrics"},
            service_env,
        ),
        Component(
            "alertmanager",
            [
                alertmanager,
                f"--config.file={RUN / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={RUN / 'alertmanager' / 'data'}",
                "--web.listen-address=127.0.0.1:9093",
                "--web.external-url=http://127.0.0.1:9093",
                "--cluster.listen-address=",
            ],
            {"http": 9093},
            http_ok("http://127.0.0.1:9093/-/ready"),
            {"Alertmanager": "http://127.0.0.1:9093/"},
            # Alertmanager 0.25 opens `api_url_file` relative to its working directory (templates
            # relative to the config file): run it from the config's folder so both resolve alike.
            cwd=RUN / "alertmanager",
        ),
        Component(
            "prometheus",
            [
                prometheus,
                f"--config.file={RUN / 'prometheus' / 'prometheus.yml'}",
                f"--storage.tsdb.path={RUN / 'prometheus' / 'data'}",
                "--web.listen-address=127.0.0.1:9090",
                "--web.external-url=http://127.0.0.1:9090",
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ],
            {"http": 9090},
            http_ok("http://127.0.0.1:9090/-/ready"),
            {"Prometheus": "http://127.0.0.1:9090/ (classic UI: /classic/graph)"},
        ),
    ]
    if with_loadgen:
        stack.append(
            Component(
                "loadgen",
                [
                    str(BIN / "loadgen"),
                    "--rps",
                    env.get("LOADGEN_RPS", "5"),
                    "--metrics-addr",
                    "127.0.0.1:9097",
                ],
                {"metrics": 9097},
                http_ok("http://127.0.0.1:9097/metrics"),
                {"loadgen metrics": "http://127.0.0.1:9097/metrics"},
            )
        )
    return stack


def active_units(units: Sequence[str], run: Runner = subprocess.run) -> list[str]:
    if not units or not systemd_running():
        return []
    return [
        unit
        for unit in units
        if run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0
    ]


def port_in_use_message(taken: Sequence[tuple[int, str]], active: Sequence[str]) -> str:
    """`taken`: (port, what needs it); `active`: Debian units running that listen on one of them."""
    ports = ", ".join(f"{port} ({what})" for port, what in taken)
    if active:
        return (
            f"port already in use: {ports}. The Debian packages' systemd unit(s) {', '.join(active)} "
            f"are active and listen there: `sudo systemctl disable --now {' '.join(active)}`, then retry."
        )
    return f"port already in use: {ports}. Stop whatever holds it (`make down`?) and retry."


def check_ports(stack: Sequence[Component]) -> None:
    taken = [
        (port, f"{c.name} {kind}") for c in stack for kind, port in c.ports.items() if not port_free(port)
    ]
    if taken:
        ports = {port for port, _ in taken}
        suspects = [unit for unit, port in DEBIAN_UNIT_PORTS.items() if port in ports]
        raise StackError(port_in_use_message(taken, active_units(suspects)))


def say(message: str) -> None:
    """print() that survives a closed terminal: after SIGHUP, writing to it may fail with EIO."""
    with contextlib.suppress(OSError):
        print(message, flush=True)


def pump(name: str, color: str, stream: object, log_path: Path) -> None:
    prefix = f"\033[{color}m{name:>12}\033[0m | " if sys.stdout.isatty() else f"{name:>12} | "
    echo = True
    with log_path.open("ab") as log:
        for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
            log.write(line)
            log.flush()
            if echo:
                try:
                    sys.stdout.write(prefix + line.decode(errors="replace"))
                    sys.stdout.flush()
                except OSError:
                    # The terminal is gone (SIGHUP): keep draining the pipe into the log, or a child
                    # blocks on a full pipe and cannot shut down.
                    echo = False


def start(component: Component, base_env: dict[str, str], color: str) -> None:
    component.proc = subprocess.Popen(
        component.argv,
        cwd=component.cwd,
        env={**base_env, **component.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Own session: Ctrl-C reaches only this script, which then stops children in order.
        start_new_session=True,
    )
    threading.Thread(
        target=pump,
        args=(component.name, color, component.proc.stdout, RUN / "logs" / f"{component.name}.log"),
        daemon=True,
    ).start()


def wait_ready(component: Component, deadline: float, stopping: StopRequest) -> bool:
    """True once the component is healthy, False as soon as a stop signal arrives: otherwise Ctrl-C
    during start-up would only take effect after the readiness timeout."""
    while time.monotonic() < deadline:
        if stopping.is_set():
            return False
        if component.proc is not None and component.proc.poll() is not None:
            raise StackError(
                f"{component.name} exited with code {component.proc.returncode} during start-up; "
                f"see .run/logs/{component.name}.log"
            )
        if component.ready():
            return True
        if stopping.wait(0.25):
            return False
    raise StackError(f"{component.name} not healthy after {READY_TIMEOUT_SECONDS:.0f}s; see .run/logs/")


def stop_all(stack: Sequence[Component]) -> None:
    for component in reversed(stack):
        proc = component.proc
        if proc is None or proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    (RUN / "pids").mkdir(exist_ok=True)
    for pid_file in (RUN / "pids").glob("*.pid"):
        pid_file.unlink()
    PID_FILE.unlink(missing_ok=True)


def print_table(stack: Sequence[Component]) -> None:
    rows = [(label, url) for c in stack for label, url in c.urls.items()]
    width = max(len(label) for label, _ in rows)
    print("\n" + "=" * 72)
    print("  stack is up — every component healthy")
    for label, url in rows:
        print(f"  {label:<{width}}  {url}")
    print("  logs: .run/logs/   stop: Ctrl-C (or `make down`)")
    print("=" * 72 + "\n", flush=True)


def stop_on_signals(stopping: StopRequest) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: stopping.set(signum))


def start_all(stack: Sequence[Component], env: dict[str, str], stopping: StopRequest) -> bool:
    """Starts the components in order, each once the one before is healthy; False when a stop signal
    comes first (the caller stops whatever did start)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    for index, component in enumerate(stack):
        if stopping.is_set():
            return False
        start(component, env, COLORS[index % len(COLORS)])
        assert component.proc is not None
        (RUN / "pids" / f"{component.name}.pid").write_text(str(component.proc.pid))
        if not wait_ready(component, deadline, stopping):
            return False
    return True


def up_native(with_loadgen: bool) -> int:
    env = {**os.environ, **read_dotenv(ROOT / ".env")}
    if not env.get("JWT_SECRET"):
        raise StackError("JWT_SECRET is not set: run `make env` (writes a random one into .env)")
    stack = components(env, with_loadgen)
    check_ports(stack)
    if PID_FILE.exists():
        PID_FILE.unlink()
    prepare_run_dir(env)
    PID_FILE.write_text(str(os.getpid()))
    stopping = StopRequest()
    stop_on_signals(stopping)
    (RUN / "pids").mkdir(exist_ok=True)
    try:
        if not start_all(stack, env, stopping):
            say("\nstopping during start-up …")
            return 130
        print_table(stack)
        while not stopping.wait(0.5):
            dead = [c for c in stack if c.proc is not None and c.proc.poll() is not None]
            if dead:
                raise StackError(f"{dead[0].name} exited with code {dead[0].proc.returncode}")  # type: ignore[union-attr]
        say("\nstopping …")
        return 0
    finally:
        stop_all(stack)


def down() -> int:
    """Stop a stack started by `make up` in the background (or left behind by a killed one)."""
    stopped = False
    if PID_FILE.exists():
        pid = int(PID_FILE.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            stopped = True
            for _ in range(int(STOP_TIMEOUT_SECONDS * 4) + 20):
                os.kill(pid, 0)
                time.sleep(0.25)
        except ProcessLookupError:
            pass
    for pid_file in (RUN / "pids").glob("*.pid") if (RUN / "pids").exists() else []:
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            stopped = True
        except (ProcessLookupError, ValueError):
            pass
        pid_file.unlink()
    PID_FILE.unlink(missing_ok=True)
    if docker_engine_answers() and (ROOT / "docker-compose.yml").exists():
        subprocess.run(["docker", "compose", "down"], cwd=ROOT, check=False)
    print("stack stopped" if stopped else "nothing was running")
    return 0


def up_docker() -> int:
    env = {**os.environ, **read_dotenv(ROOT / ".env")}
    # The Alertmanager image runs as `nobody`, which cannot read the 0600 files written for native
    # runs; the folder itself is git-ignored.
    write_alertmanager_secrets(
        ROOT / "alertmanager", NotificationUrls.from_env(env, "http://slacksink:9095"), mode=0o644
    )
    return subprocess.run(["docker", "compose", "up", "-d", "--build"], cwd=ROOT, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", default="up", choices=["up", "down"])
    parser.add_argument("--mode", default="auto", choices=["auto", "native", "docker"])
    parser.add_argument("--no-loadgen", action="store_true", help="do not start the load generator")
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            return down()
        if args.mode == "docker" or (args.mode == "auto" and docker_engine_answers()):
            if not docker_engine_answers():
                raise StackError("MODE=docker but no Docker engine answers `docker info`")
            return up_docker()
        return up_native(with_loadgen=not args.no_loadgen)
    except StackError as error:
        print(f"make up: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C before the stop handlers are in place (e.g. during apt-get): nothing started yet.
        return 130


if __name__ == "__main__":
    sys.exit(main())
