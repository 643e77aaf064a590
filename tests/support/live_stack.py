"""The real stack as processes on loopback, for end-to-end and dashboard tests: the Slack sink,
userd, orderd, Alertmanager and Prometheus (Debian packages) with the repo's own prometheus.yml,
rules, alertmanager.yml and templates, unedited, plus the load generator driving traffic.

Ports are chosen free at start, so a running `make up` demo does not collide with the tests. Every
process is killed at the end of the session; every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from stackconfig import (
    NotificationUrls,
    write_alertmanager_secrets,
    write_prometheus_targets,
)

from tests.support.processes import ROOT, free_port, wait_serving

JWT_SECRET = "live-stack-secret-" + "y" * 32
# Rate windows in the rules are 1m: this much traffic makes every rate and ratio rule return data.
WARMUP_SECONDS = 75.0
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")


def http_json(url: str, data: bytes | None = None, method: str | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> float:
    """Returns the seconds it took; raises with `what` after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - start


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path = ROOT
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class LiveStack:
    root: Path
    ports: dict[str, int]
    processes: dict[str, Process] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['alertmanager']}"

    @property
    def sink_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['slacksink']}"

    @property
    def url(self) -> str:
        return self.prometheus_url

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; raises on a query error."""
        params = urllib.parse.urlencode({"query": expr})
        body = http_json(f"{self.prometheus_url}/api/v1/query?{params}", timeout=10)
        if body.get("status") != "success":
            raise AssertionError(f"query failed: {expr}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def slack_messages(self) -> list[dict[str, Any]]:
        body = http_json(f"{self.sink_url}/api/messages")
        messages: list[dict[str, Any]] = body["messages"]
        return messages

    def service_env(self, name: str) -> dict[str, str]:
        env = {
            "GRPC_ADDR": f"127.0.0.1:{self.ports[name + '_grpc']}",
            "METRICS_ADDR": f"127.0.0.1:{self.ports[name]}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.root / (name + '.sqlite3')}",
            "FAULT_INJECTION_ENABLED": "true",
            "LOG_FORMAT": "json",
        }
        if name == "userd":
            env |= {"JWT_SECRET": JWT_SECRET, "BCRYPT_ROUNDS": "4"}
        else:
            env |= {"USERD_ADDR": f"127.0.0.1:{self.ports['userd_grpc']}"}
        return env

    def start_service(self, name: str) -> None:
        process = Process(
            name, [sys.executable, "-m", name], self.service_env(name), self.root / f"{name}.log"
        )
        self.processes[name] = process
        process.start()
        wait_serving(self.ports[name + "_grpc"], timeout=30)

    def kill_service(self, name: str) -> None:
        self.processes[name].kill()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


def _find(binaries: tuple[str, ...]) -> str | None:
    return next((path for name in binaries if (path := shutil.which(name))), None)


def _link(target: Path, at: Path) -> None:
    at.symlink_to(target)


def start_live_stack(root: Path, loadgen_rps: float = 15.0) -> LiveStack:
    prometheus = shutil.which("prometheus")
    alertmanager = _find(ALERTMANAGER_BINARIES)
    if prometheus is None or alertmanager is None:
        pytest.skip(
            "prometheus and prometheus-alertmanager are needed (apt-get install prometheus prometheus-alertmanager)"
        )
    names = (
        "slacksink",
        "userd",
        "userd_grpc",
        "orderd",
        "orderd_grpc",
        "alertmanager",
        "prometheus",
        "loadgen",
    )
    stack = LiveStack(root, {name: free_port() for name in names})
    try:
        _start_processes(stack, prometheus, alertmanager, loadgen_rps)
    except BaseException:
        # The caller only gets a stack to stop once start-up succeeded: whatever did start before a
        # timeout, a failed spawn or Ctrl-C would otherwise outlive the test session.
        stack.stop()
        raise
    return stack


def _start_processes(stack: LiveStack, prometheus: str, alertmanager: str, loadgen_rps: float) -> None:
    """Each process is registered in `stack.processes` before it is spawned, so stack.stop() reaches
    everything started so far."""
    root, ports = stack.root, stack.ports
    sink = Process(
        "slacksink",
        [sys.executable, "-m", "slacksink", "--addr", f"127.0.0.1:{ports['slacksink']}"],
        {},
        root / "slacksink.log",
    )
    stack.processes["slacksink"] = sink
    sink.start()
    wait_until(lambda: http_ok(f"{stack.sink_url}/healthz"), 20, "slack sink healthy")

    stack.start_service("userd")
    stack.start_service("orderd")

    am_dir = root / "alertmanager"
    am_dir.mkdir()
    _link(ROOT / "alertmanager" / "alertmanager.yml", am_dir / "alertmanager.yml")
    _link(ROOT / "alertmanager" / "templates", am_dir / "templates")
    write_alertmanager_secrets(am_dir, NotificationUrls.from_env({}, stack.sink_url))
    am = Process(
        "alertmanager",
        [
            alertmanager,
            f"--config.file={am_dir / 'alertmanager.yml'}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
            f"--web.external-url={stack.alertmanager_url}",
            "--cluster.listen-address=",
        ],
        {},
        root / "alertmanager.log",
        # api_url_file is opened relative to the working directory (see tools/up.py).
        cwd=am_dir,
    )
    stack.processes["alertmanager"] = am
    am.start()
    wait_until(lambda: http_ok(f"{stack.alertmanager_url}/-/ready"), 30, "alertmanager ready")

    prom_dir = root / "prometheus"
    prom_dir.mkdir()
    _link(ROOT / "prometheus" / "prometheus.yml", prom_dir / "prometheus.yml")
    _link(ROOT / "prometheus" / "rules", prom_dir / "rules")
    write_prometheus_targets(
        prom_dir / "targets",
        lambda _job: "127.0.0.1",
        {job: ports[job] for job in ("userd", "orderd", "loadgen", "prometheus", "alertmanager")},
    )
    prom = Process(
        "prometheus",
        [
            prometheus,
            f"--config.file={prom_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            f"--web.external-url={stack.prometheus_url}",
            "--enable-feature=exemplar-storage",
        ],
        {},
        root / "prometheus.log",
    )
    stack.processes["prometheus"] = prom
    prom.start()
    wait_until(lambda: http_ok(f"{stack.prometheus_url}/-/ready"), 30, "prometheus ready")

    loadgen = Process(
        "loadgen",
        [
            sys.executable,
            "-m",
            "loadgen",
            "--rps",
            str(loadgen_rps),
            "--users",
            "6",
            "--seed",
            "7",
            "--target-userd",
            f"127.0.0.1:{ports['userd_grpc']}",
            "--target-orderd",
            f"127.0.0.1:{ports['orderd_grpc']}",
            "--userd-admin",
            f"http://127.0.0.1:{ports['userd']}",
            "--orderd-admin",
            f"http://127.0.0.1:{ports['orderd']}",
            "--pool-file",
            str(root / "loadgen-users.json"),
            "--metrics-addr",
            f"127.0.0.1:{ports['loadgen']}",
        ],
        {},
        root / "loadgen.log",
    )
    stack.processes["loadgen"] = loadgen
    loadgen.start()
    stack.started_at = time.monotonic()


@pytest.fixture(scope="session")
def live_stack() -> Iterator[LiveStack]:
    root = Path(tempfile.mkdtemp(prefix="live-stack-"))
    stack = start_live_stack(root)
    try:
        yield stack
    finally:
        stack.stop()
        if os.environ.get("KEEP_LIVE_STACK_LOGS"):
            print(f"live stack logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def live_prometheus(live_stack: LiveStack) -> LiveStack:
    """The live stack once Prometheus holds at least WARMUP_SECONDS of traffic."""
    remaining = WARMUP_SECONDS - (time.monotonic() - live_stack.started_at)
    if remaining > 0:
        time.sleep(remaining)
    return live_stack
