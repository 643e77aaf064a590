"""Import paths and fixtures for the monitoring-stack tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import slacksink  # noqa: F401
except ModuleNotFoundError:
    # An editable install made before services/slacksink existed does not map it; `pip install -e .`
    # fixes that and makes this branch dead.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services"))

from slacksink.server import SinkServer
from slacksink.store import MessageStore

from tests.stack.support import running_sink


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian packages prometheus / prometheus-alertmanager)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _binary("amtool")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    return _binary("prometheus-alertmanager")


@pytest.fixture
def sink() -> Iterator[SinkServer]:
    with MessageStore(max_messages=50) as store, running_sink(store) as server:
        yield server
