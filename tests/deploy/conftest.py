"""Shared fixtures for the offline checks of Dockerfile, docker-compose.yml and deploy/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# Commands get this long; each one here finishes in well under a second on this machine.
TOOL_TIMEOUT_SECONDS = 60


def find_tool(name: str) -> str | None:
    """The venv's copy first (dev extras install linters there), then PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which(name)


def run_tool(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, check=False, **kwargs
    )


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str, str], str]:
    """`require_tool(name, how_to_install)` gives the tool's path, or skips the test saying how to
    get it: the linters are optional extras, not something every machine has."""

    def require(name: str, how_to_install: str) -> str:
        path = find_tool(name)
        if path is None:
            pytest.skip(f"{name} is not installed ({how_to_install})")
        return path

    return require


@pytest.fixture(scope="session")
def run() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_tool


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def kustomize() -> Callable[..., list[dict[str, Any]]]:
    """Builds a kustomization offline with `kubectl kustomize` and returns its objects; cached,
    because several test modules read the same build."""
    kubectl = find_tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (apt-get install kubectl); it builds kustomizations offline")
    cache: dict[tuple[str, bool], list[dict[str, Any]]] = {}

    def build(directory: str, *, load_anywhere: bool = False) -> list[dict[str, Any]]:
        key = (directory, load_anywhere)
        if key not in cache:
            args = [kubectl, "kustomize", str(REPO / directory)]
            if load_anywhere:
                args += ["--load-restrictor", "LoadRestrictionsNone"]
            result = run_tool(args)
            assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
            cache[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[key]

    return build
