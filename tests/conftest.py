"""Suite-wide rules.

Layers, selected with markers (`make test-unit` runs `-m unit`):
- unit: no I/O but files. A unit test that opens a network socket, starts a process, creates a gRPC
  server or channel, or sleeps fails at once (`_io_free` below);
- integration: in-process gRPC servers, real SQLite and PostgreSQL, promtool/amtool/Alertmanager,
  the deployment tools;
- e2e: the stack `make up` starts, as real processes.
Each test gets its folder's layer (tests/unit, tests/e2e, anything else integration) unless its
module names one itself.

Tests that need an external server (PostgreSQL, Prometheus, Alertmanager) skip with a reason when it
is missing, so `make test` passes on a laptop; CI sets REQUIRE_EXTERNAL_SERVICES=1, which turns any
skip into a failed run."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

LAYERS = ("unit", "integration", "e2e")
_TESTS = Path(__file__).resolve().parent


def _folder_layer(path: Path) -> str:
    folder = path.relative_to(_TESTS).parts[0]
    return folder if folder in ("unit", "e2e") else "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(layer) for layer in LAYERS):
            item.add_marker(getattr(pytest.mark, _folder_layer(Path(str(item.path)))))


class IoInUnitTest(AssertionError):
    """A unit test did I/O it must not do; move it to tests/integration or fake the I/O."""


def _refuse(what: str) -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise IoInUnitTest(f"unit tests do no {what}: move the test to tests/integration, or fake it")

    return refuse


@pytest.fixture(autouse=True)
def _io_free(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    real_sleep = asyncio.sleep

    async def no_waiting(delay: float, result: Any = None) -> Any:
        # Yielding to the loop (sleep(0)) is how async code lets others run; waiting is not.
        if delay > 0:
            raise IoInUnitTest("unit tests do not sleep: wait on a fake clock or move the test")
        return await real_sleep(0, result)

    for name in ("connect", "connect_ex", "bind", "sendto"):
        monkeypatch.setattr(socket.socket, name, _refuse("network sockets"))
    monkeypatch.setattr(socket, "create_connection", _refuse("network sockets"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("processes"))
    monkeypatch.setattr(time, "sleep", _refuse("sleeping"))
    monkeypatch.setattr(asyncio, "sleep", no_waiting)
    for module, name in (
        (grpc, "server"),
        (grpc, "insecure_channel"),
        (grpc.aio, "server"),
        (grpc.aio, "insecure_channel"),
    ):
        monkeypatch.setattr(module, name, _refuse("gRPC servers or channels"))
    yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("REQUIRE_EXTERNAL_SERVICES") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"REQUIRE_EXTERNAL_SERVICES is set and {len(skipped)} test(s) were skipped: failing the run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
