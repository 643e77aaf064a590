"""`make up` / `make down` / `make env` / `make chaos-down`: the whole demo on one machine.

With a Docker engine (and MODE=auto or docker) `up` hands over to `docker compose`. Otherwise it
runs the stack of `nativestack.components` as local processes on 127.0.0.1 under
`nativestack.supervisor`: run-time files under .run/, databases under .data/ (both git-ignored),
every component started once the ones before it are healthy, the URLs printed, prefixed logs
streamed until Ctrl-C; a component that exits is restarted. `make up &` followed by `make down`
works too (a pid file in .run/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nativestack.components import (
    ROOT,
    Binaries,
    Component,
    Ports,
    StackSettings,
    components,
    prepare_run_dir,
)
from nativestack.dotenv import ensure_secrets, read_dotenv
from nativestack.prerequisites import StackError, check_ports, find_binaries, find_grafana
from nativestack.supervisor import (
    StartError,
    StopRequest,
    Supervisor,
    say,
    signal_owned,
    write_hold,
    write_pid_file,
)
from stackconfig import prepare_compose

RUN = ROOT / ".run"
DATA = ROOT / ".data"
DOTENV = ROOT / ".env"
PID_FILE = RUN / "stack.pid"
# Ctrl-C, `make down` (SIGTERM), a closed terminal (SIGHUP) and Ctrl-\ (SIGQUIT) all end a run the
# same way: the children are in their own sessions, so only this process hears any of them.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
STOP_WAIT_SECONDS = 30.0


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
        )
    except subprocess.TimeoutExpired:
        return False


def stack_env() -> dict[str, str]:
    """What every component starts with: this environment, then .env (secrets and settings). A native
    Grafana reads its admin password under Grafana's own name."""
    env = {**os.environ, **read_dotenv(DOTENV)}
    if env.get("GRAFANA_ADMIN_PASSWORD"):
        env.setdefault("GF_SECURITY_ADMIN_PASSWORD", env["GRAFANA_ADMIN_PASSWORD"])
    return env


def native_settings(env: dict[str, str], *, with_loadgen: bool = True) -> StackSettings:
    prometheus, alertmanager, blackbox = find_binaries()
    replicas = int(env.get("USERD_REPLICAS", "1") or "1")
    if replicas not in (1, 2):
        raise StackError(f"USERD_REPLICAS={replicas}: the native stack runs 1 or 2 userd replicas")
    return StackSettings(
        run_dir=RUN,
        data_dir=DATA,
        ports=Ports.default(userd_replicas=replicas),
        binaries=Binaries(
            prometheus,
            alertmanager,
            Path(sys.executable).parent,
            grafana=find_grafana(env),
            blackbox=blackbox,
        ),
        loadgen_rps=env.get("LOADGEN_RPS", "5") or "5",
        with_loadgen=with_loadgen,
    )


NO_GRAFANA = (
    "not installed: put Grafana's `grafana` or `grafana-server` on PATH (or GRAFANA_HOME) and `make up` "
    "runs it with the dashboards; compose mode includes it"
)


def print_table(stack: Sequence[Component]) -> None:
    rows = [(label, url) for c in stack for label, url in c.urls.items()]
    width = max(len(label) for label, _ in rows)
    print("\n" + "=" * 72)
    print("  stack is up — every component healthy")
    for label, url in rows:
        print(f"  {label:<{width}}  {url}")
    if not any(c.name == "grafana" for c in stack):
        print(f"  {'Grafana':<{width}}  {NO_GRAFANA}")
    print("  logs: .run/logs/   stop: Ctrl-C (or `make down`)")
    print("=" * 72 + "\n", flush=True)


def stop_on_signals(stopping: StopRequest) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: stopping.set(signum))


def up_native(with_loadgen: bool) -> int:
    env = stack_env()
    if not env.get("JWT_SECRET"):
        raise StackError("JWT_SECRET is not set: run `make env` (writes a random one into .env)")
    settings = native_settings(env, with_loadgen=with_loadgen)
    stack = components(settings)
    check_ports(stack)
    prepare_run_dir(settings, env)
    write_pid_file(PID_FILE, os.getpid())
    stopping = StopRequest()
    stop_on_signals(stopping)
    supervisor = Supervisor(stack, RUN, env)
    try:
        if not supervisor.start_all(stopping):
            say("\nstopping during start-up …")
            return 130
        print_table(stack)
        supervisor.watch(stopping)
        say("\nstopping …")
        return 0
    except StartError as error:
        raise StackError(str(error)) from None
    finally:
        supervisor.stop_all()
        PID_FILE.unlink(missing_ok=True)


def down() -> int:
    """Stop a stack started by `make up` in the background (or children left behind by a killed
    one). Only pids whose process is still the one that was started are signalled."""
    stopped = False
    if signal_owned(PID_FILE):
        stopped = True
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while (RUN / "pids").exists() and any((RUN / "pids").glob("*.pid")) and time.monotonic() < deadline:
            time.sleep(0.25)
    for pid_file in sorted((RUN / "pids").glob("*.pid")) if (RUN / "pids").exists() else []:
        stopped |= signal_owned(pid_file)
    if docker_engine_answers() and (ROOT / "docker-compose.yml").exists():
        subprocess.run(["docker", "compose", "down"], cwd=ROOT, check=False)
    print("stack stopped" if stopped else "nothing was running")
    return 0


def hold(name: str, minutes: float) -> int:
    """`make chaos-down`: the native supervisor stops `name` and starts it again after `minutes`."""
    if not PID_FILE.exists():
        raise StackError("no native stack is running (`make up` first)")
    write_hold(RUN, name, minutes * 60)
    print(f"{name} held down for {minutes:g} min; the supervisor starts it again afterwards")
    return 0


def up_docker() -> int:
    prepare_compose(ROOT, stack_env())
    return subprocess.run(["docker", "compose", "up", "-d", "--build"], cwd=ROOT, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", default="up", choices=["up", "down", "env", "hold"])
    parser.add_argument("--mode", default="auto", choices=["auto", "native", "docker"])
    parser.add_argument("--no-loadgen", action="store_true", help="do not start the load generator")
    parser.add_argument("--component", default="userd", help="hold: the component to keep down")
    parser.add_argument("--minutes", type=float, default=2.0, help="hold: for how long")
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            for name in ensure_secrets(DOTENV):
                print(f"added {name} to .env")
            return 0
        if args.command == "down":
            return down()
        if args.command == "hold":
            return hold(args.component, args.minutes)
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
