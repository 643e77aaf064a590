"""The stack `make up` starts, for end-to-end and dashboard tests: the same component table
(tools/nativestack/components.py), started and supervised by the same supervisor, on free ports in a
temporary folder, with the repo's own prometheus.yml, rules, alertmanager.yml and templates.

The one difference is `TEST_OVERRIDES`, the documented override the table accepts:
- `BCRYPT_ROUNDS=4`: registrations and logins cost ~1 ms instead of ~250 ms, so the load generator's
  pool and the brute-force burst do not take a core for minutes;
- `LOG_FORMAT=json`: tests read service logs as JSON lines;
- loadgen `--users 6 --seed 7`: a small pool registered quickly, the same mix on every run.
tests/integration/test_stack_description.py fails if anything else differs.

Every process is stopped at the end; every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nativestack.components import (
    Binaries,
    Ports,
    StackOverrides,
    StackSettings,
    components,
    prepare_run_dir,
)
from nativestack.prerequisites import ALERTMANAGER_BINARIES
from nativestack.supervisor import StopRequest, Supervisor

JWT_SECRET = "live-stack-secret-" + "y" * 32
FAULT_TOKEN = "live-stack-fault-token-" + "z" * 16
# Rate windows in the rules are 1m: this much scraped traffic makes every rate and ratio rule return data.
WARMUP_SECONDS = 75.0
LOADGEN_RPS = "15"
TEST_OVERRIDES = StackOverrides(
    service_env={"BCRYPT_ROUNDS": "4", "LOG_FORMAT": "json"},
    loadgen_args=("--users", "6", "--seed", "7"),
)


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


def binaries() -> Binaries:
    prometheus = shutil.which("prometheus")
    alertmanager = next((p for name in ALERTMANAGER_BINARIES if (p := shutil.which(name))), None)
    if prometheus is None or alertmanager is None:
        pytest.skip(
            "prometheus and prometheus-alertmanager are needed (apt-get install prometheus prometheus-alertmanager)"
        )
    return Binaries(prometheus, alertmanager, Path(sys.executable).parent)


def live_settings(root: Path, ports: Ports | None = None) -> StackSettings:
    return StackSettings(
        run_dir=root / "run",
        data_dir=root / "data",
        ports=ports or Ports.free(),
        binaries=binaries(),
        loadgen_rps=LOADGEN_RPS,
        overrides=TEST_OVERRIDES,
    )


def base_env() -> dict[str, str]:
    """What `.env` holds for `make up`: the secrets."""
    return {**os.environ, "JWT_SECRET": JWT_SECRET, "FAULT_INJECTION_TOKEN": FAULT_TOKEN}


@dataclass
class LiveStack:
    root: Path
    settings: StackSettings
    supervisor: Supervisor
    started_at: float = 0.0
    _stopping: StopRequest = field(default_factory=StopRequest)
    _watcher: threading.Thread | None = None

    @property
    def ports(self) -> Ports:
        return self.settings.ports

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.alertmanager}"

    @property
    def sink_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.slacksink}"

    @property
    def url(self) -> str:
        return self.prometheus_url

    @property
    def userd_target(self) -> str:
        return self.ports.userd[0].grpc_addr

    @property
    def orderd_target(self) -> str:
        return self.ports.orderd.grpc_addr

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

    def hold(self, name: str, seconds: float) -> None:
        """What `make chaos-down` does: the supervisor stops it and keeps it down."""
        self.supervisor.hold(name, seconds)

    def release(self, name: str) -> None:
        self.supervisor.release(name)

    def kill(self, name: str) -> None:
        """`kill -9` of the component's pid; the supervisor restarts it."""
        self.supervisor.kill(name, signal.SIGKILL)

    def start_watching(self) -> None:
        self._watcher = threading.Thread(target=self.supervisor.watch, args=(self._stopping,), daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self.supervisor.stop_all()


def start_live_stack(root: Path, settings: StackSettings | None = None) -> LiveStack:
    settings = settings or live_settings(root)
    env = base_env()
    prepare_run_dir(settings, env)
    supervisor = Supervisor(components(settings), settings.run_dir, env, echo=False, report=lambda _m: None)
    stack = LiveStack(root, settings, supervisor)
    try:
        if not supervisor.start_all(StopRequest()):
            raise RuntimeError("live stack start-up interrupted")
    except BaseException:
        # The caller only gets a stack to stop once start-up succeeded: whatever did start before a
        # timeout, a failed spawn or Ctrl-C would otherwise outlive the test session.
        supervisor.stop_all()
        raise
    stack.started_at = time.monotonic()
    stack.start_watching()
    return stack


@pytest.fixture(scope="module")
def live_stack() -> Iterator[LiveStack]:
    """A stack of its own for each test module, so modules run side by side (pytest-xdist
    distributes by file) and one module's faults never show in another's alerts."""
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


@pytest.fixture(scope="module")
def live_prometheus(live_stack: LiveStack) -> LiveStack:
    """The live stack once Prometheus holds WARMUP_SECONDS of scrapes of every job, with traffic."""
    window = f"{WARMUP_SECONDS:.0f}s"
    # 5 s scrapes: a full window holds WARMUP_SECONDS / 5 samples; one missed scrape is tolerated.
    enough = WARMUP_SECONDS / 5 - 1

    def warm() -> bool:
        samples = live_stack.query(f"min(count_over_time(up[{window}]))")
        traffic = live_stack.query('sum(rate(grpc_server_handled_total{job="orderd"}[1m])) > 0')
        return bool(samples) and float(samples[0]["value"][1]) >= enough and bool(traffic)

    wait_until(warm, WARMUP_SECONDS * 3, "Prometheus warmed up", interval=2)
    return live_stack
