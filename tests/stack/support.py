"""Small helpers for the monitoring-stack tests: paths, ports, HTTP and bounded waiting."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from slacksink.server import SinkServer
from slacksink.store import MessageStore
from stackconfig import NotificationUrls, write_alertmanager_secrets

from tests.support.processes import free_port as free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
ALERTMANAGER_DIR = ROOT / "alertmanager"
RUNBOOK = ROOT / "docs" / "runbook.md"

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `check` until it returns something other than None; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def http_post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def get_json(url: str) -> Any:
    status, body = http_get(url)
    assert status == 200, f"GET {url}: {status} {body}"
    return json.loads(body)


@contextmanager
def running_sink(store: MessageStore, runbook: Path | None = None) -> Iterator[SinkServer]:
    """The Slack sink on a port chosen by the OS, served from a thread."""
    server = SinkServer(("127.0.0.1", 0), store, runbook)
    # A short poll interval so shutdown() returns in milliseconds, not the default half second.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slacksink", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def alertmanager_config_copy(directory: Path, urls: NotificationUrls | None = None) -> Path:
    """alertmanager.yml with its templates and the secret files it reads, laid out as `make up` does."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ALERTMANAGER_DIR / "alertmanager.yml", directory / "alertmanager.yml")
    shutil.copytree(ALERTMANAGER_DIR / "templates", directory / "templates")
    write_alertmanager_secrets(directory, urls or NotificationUrls.from_env({}))
    return directory / "alertmanager.yml"
