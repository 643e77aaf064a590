"""The compose rehearsal (tools/rehearsal) for tests: docker-compose.yml from a copy of this checkout,
with a `.env` of fresh secrets as `make env` writes it and the files `make up` writes for compose,
run with the replicas a test asks for. Nothing of the checkout itself is written (its `.env` and
alertmanager/secrets/ belong to the user). Root is required; without it the tests skip (and CI,
where REQUIRE_EXTERNAL_SERVICES=1, fails)."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from nativestack.dotenv import ensure_secrets
from rehearsal.composefile import compose_environment, load
from rehearsal.stack import Rehearsal
from stackconfig import prepare_compose

from tests.support.live_stack import http_json
from tests.support.observability_echo import Scrape, http_get
from tests.support.processes import ROOT

# Not part of what compose reads: the checkout's own state, caches and the venv.
_NOT_COPIED = (".git", ".venv", ".run", ".data", ".env", "secrets", "__pycache__", ".mypy_cache",
               ".ruff_cache", ".pytest_cache", "*.egg-info", "node_modules")  # fmt: skip


def copy_checkout(destination: Path) -> Path:
    shutil.copytree(ROOT, destination, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
    return destination


def prerequisites_missing() -> str | None:
    if os.geteuid() != 0:
        return "the compose rehearsal needs root (mount namespaces, DNS on port 53)"
    for binary in ("/usr/sbin/dnsmasq", "/usr/bin/prometheus", "/usr/bin/prometheus-alertmanager",
                   "/usr/bin/prometheus-blackbox-exporter", "/usr/bin/psql", "/usr/bin/pg_isready"):  # fmt: skip
        if not Path(binary).exists():
            return f"{binary} is not installed (.ci/run installs it)"
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "PostgreSQL's server binaries are not installed"
    return None


def rehearsal_of(work: Path, scale: Mapping[str, int]) -> Rehearsal:
    project_dir = copy_checkout(work / "checkout")
    ensure_secrets(project_dir / ".env")
    env = compose_environment(project_dir / ".env", {})
    prepare_compose(project_dir, env)
    # A network of its own per run: two rehearsals on one machine never share an address.
    network = random.Random().randrange(100, 250)
    return Rehearsal(load(project_dir / "docker-compose.yml", env), work / "run", scale, network)


def running_rehearsal(work: Path, scale: Mapping[str, int]) -> Iterator[Rehearsal]:
    missing = prerequisites_missing()
    if missing:
        pytest.skip(missing)
    rehearsal = rehearsal_of(work, scale)
    try:
        rehearsal.up()
        yield rehearsal
    finally:
        rehearsal.down()


def url(rehearsal: Rehearsal, service: str, port: int, path: str, index: int = 1) -> str:
    """A container's port, as the test (outside the namespaces) reaches it: its own address."""
    return f"http://{rehearsal.address(service, index)}:{port}{path}"


def scrape(address_url: str) -> Scrape:
    status, _, body = http_get(address_url, timeout=5)
    assert status == 200, f"GET {address_url}: HTTP {status}"
    return Scrape(body.decode())


def prometheus_query(rehearsal: Rehearsal, query: str) -> list[dict[str, Any]]:
    answer = http_json(url(rehearsal, "prometheus", 9090, "/api/v1/query?" + urlencode({"query": query})))
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result
