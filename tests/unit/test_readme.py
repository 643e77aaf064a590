"""The README is true line by line: every make target, environment variable, port and path it names
exists in the code, and `make help` lists every target. (Its "Try it" block runs against the native
stack in tests/e2e/test_alerting.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from nativestack.components import Ports

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
# Where a variable may be read or set: the services, tools, load generator and deployment files.
CODE_ROOTS = ("services", "tools", "loadgen", "docker-compose.yml", "Makefile", "deploy", ".ci")
# Read by libraries rather than by this code: OpenTelemetry's SDK reads its standard variables.
LIBRARY_VARIABLES = {"OTEL_SERVICE_NAME"}
STATUS_WORDS = {code.name for code in grpc.StatusCode} | {"SERVING", "NOT_SERVING"}
# Ports outside the native stack's table: compose's UIs, PostgreSQL, an OTLP collector of one's own.
OTHER_PORTS = {3000, 16686, 5432, 4317, 3100}
GENERATED = (".run", ".data", ".venv", "alertmanager/secrets")


def make_targets(makefile: str) -> set[str]:
    return set(re.findall(r"^([a-zA-Z0-9_-]+):", makefile, re.MULTILINE))


def named_targets(readme: str) -> set[str]:
    return set(re.findall(r"`make ([a-z0-9][a-z0-9-]*)", readme))


def missing_targets(readme: str, makefile: str) -> set[str]:
    return named_targets(readme) - make_targets(makefile)


def named_variables(readme: str) -> set[str]:
    found = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})(?:=[^`]*)?`", readme))
    found |= set(re.findall(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)=", readme))
    return found - STATUS_WORDS


def code_text() -> str:
    parts = []
    for name in CODE_ROOTS:
        path = ROOT / name
        files = (
            [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and p.suffix != ".pyc"]
        )
        parts += [f.read_text(encoding="utf-8", errors="replace") for f in files]
    return "\n".join(parts)


def read_in(variable: str, code: str) -> bool:
    # Or built from a prefix: env.get(f"SLACK_WEBHOOK_URL_{severity}").
    prefix = variable.rsplit("_", 1)[0]
    return bool(re.search(rf"\b{variable}\b", code)) or f'"{prefix}_{{' in code


def missing_variables(readme: str, code: str) -> set[str]:
    return {v for v in named_variables(readme) - LIBRARY_VARIABLES if not read_in(v, code)}


def test_every_make_target_named_exists() -> None:
    assert missing_targets(README, MAKEFILE) == set()


def test_a_removed_target_or_variable_is_caught() -> None:
    assert missing_targets("run `make chaos-gone`", MAKEFILE) == {"chaos-gone"}
    assert missing_variables("set `NO_SUCH_SETTING`", "GRPC_ADDR") == {"NO_SUCH_SETTING"}


def test_make_help_lists_every_phony_target() -> None:
    phony = set(
        " ".join(re.findall(r"^\.PHONY:((?:.*\\\n)*.*)", MAKEFILE, re.MULTILINE)).replace("\\", " ").split()
    )
    helped = set(re.findall(r"^([a-zA-Z0-9_-]+):.*## ", MAKEFILE, re.MULTILINE))
    assert phony - helped == set()
    assert {"k8s-rules", "test-unit", "test-integration"} <= helped


def test_every_variable_named_is_read_somewhere() -> None:
    assert missing_variables(README, code_text()) == set()


def test_every_port_named_is_the_stacks() -> None:
    ports = Ports.default(userd_replicas=2)
    known = {
        ports.prometheus, ports.alertmanager, ports.slacksink, ports.loadgen, ports.orderd.grpc, ports.orderd.metrics,
        ports.blackbox,
        *(p.grpc for p in ports.userd), *(p.metrics for p in ports.userd),
    } | OTHER_PORTS  # fmt: skip
    named = {int(p) for p in re.findall(r"(?:127\.0\.0\.1|localhost|[\s`(]):(\d{4,5})\b", README)}
    assert named - known == set()


@pytest.mark.parametrize(
    "path",
    sorted(
        {
            p.rstrip("/")
            for p in re.findall(r"`((?:\.?[\w.-]+/)+[\w.-]*)`", README)
            if not p.startswith(("http", "/")) and "<" not in p
        }
    ),
)
def test_every_path_named_exists(path: str) -> None:
    if path.startswith(GENERATED):
        # Written by `make up`: git-ignored rather than present in a fresh clone.
        ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
        assert any(path.startswith(e.strip("/")) or path.split("/")[-1] == e.strip("/") for e in ignored), (
            path
        )
    else:
        assert (ROOT / path).exists(), path
