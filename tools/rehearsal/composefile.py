"""docker-compose.yml as compose reads it: YAML merge keys, `${VAR}` interpolation from the environment
and `.env`, and each service's command, environment, mounts, health check and dependencies in one
typed form. Only the parts of the Compose Specification that this project's file uses are modelled;
anything else in a service is reported, not silently ignored (`ServiceSpec.unsupported`)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

# Keys of a service the rehearsal either applies or deliberately leaves to Docker (documented in
# docs/compose-rehearsal.md); a key outside both sets is a new compose feature nobody has rehearsed.
APPLIED: Final = frozenset(
    {
        "image", "build", "command", "environment", "volumes", "tmpfs", "read_only", "working_dir",
        "healthcheck", "depends_on", "restart", "stop_grace_period", "expose", "ports", "user",
    }
)  # fmt: skip
NOT_APPLIED: Final = frozenset({"init", "cap_drop", "security_opt"})

_VARIABLE: Final = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class ComposeError(ValueError):
    """The file cannot be used as compose would use it (an unset required variable, a bad value)."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    ${VAR?error}, ${VAR:+alternative}, ${VAR+alternative}. A `${…}` nested inside a default is not
    supported (this project's file has none)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset_or_empty = not value
        missing = unset_or_empty if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return interpolate(arg, env) if missing else str(value)
        if op in (":?", "?"):
            if missing:
                raise ComposeError(f"required variable {name} is missing a value: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if missing else interpolate(arg, env)
        return value or ""

    return _VARIABLE.sub(replace, text)


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """Compose's `.env`: KEY=VALUE lines, `#` comments, optional quotes around the value."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _duration(text: str | None, default: float) -> float:
    """Compose durations: 30s, 1m30s, 500ms."""
    if text is None:
        return default
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(text)):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


@dataclass(frozen=True)
class Mount:
    target: str
    source: str
    """A host path (absolute, resolved against the project folder) or a named volume's name."""
    named_volume: bool
    read_only: bool


@dataclass(frozen=True)
class HealthCheck:
    argv: tuple[str, ...]
    interval: float
    timeout: float
    retries: int
    start_period: float


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str | None
    built_here: bool
    command: tuple[str, ...]
    environment: Mapping[str, str]
    mounts: tuple[Mount, ...]
    tmpfs: tuple[str, ...]
    read_only: bool
    working_dir: str | None
    healthcheck: HealthCheck | None
    depends_on: Mapping[str, str]
    """service -> condition (service_started, service_healthy, service_completed_successfully)."""
    restart: str
    stop_grace_period: float
    user: str | None
    published: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = field(default=())


def _command(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(shlex.split(raw))
    return tuple(str(arg) for arg in raw)


def _environment(raw: Any, env: Mapping[str, str]) -> dict[str, str]:
    items: dict[str, Any]
    if raw is None:
        items = {}
    elif isinstance(raw, list):
        items = {}
        for entry in raw:
            key, sep, value = str(entry).partition("=")
            items[key] = value if sep else None
    else:
        items = dict(raw)
    result = {}
    for key, value in items.items():
        if value is None:  # `KEY` alone: passed through from compose's own environment
            if key in env:
                result[str(key)] = env[key]
            continue
        result[str(key)] = "true" if value is True else "false" if value is False else str(value)
    return result


def _mounts(raw: Any, project: Path) -> tuple[Mount, ...]:
    mounts = []
    for volume in raw or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        else:
            source, target = str(volume["source"]), str(volume["target"])
            read_only = bool(volume.get("read_only", False))
        named = not source.startswith((".", "/", "~"))
        host = source if named else str((project / source).resolve())
        mounts.append(Mount(target, host, named, read_only))
    return tuple(mounts)


def _healthcheck(raw: Any) -> HealthCheck | None:
    if not raw or raw.get("disable"):
        return None
    test = raw["test"]
    if isinstance(test, str):
        argv: tuple[str, ...] = ("/bin/sh", "-c", test)
    elif test[0] == "CMD":
        argv = tuple(str(arg) for arg in test[1:])
    elif test[0] == "CMD-SHELL":
        argv = ("/bin/sh", "-c", str(test[1]))
    else:
        return None  # NONE
    return HealthCheck(
        argv,
        _duration(raw.get("interval"), 30.0),
        _duration(raw.get("timeout"), 30.0),
        int(raw.get("retries", 3)),
        _duration(raw.get("start_period"), 0.0),
    )


def _depends_on(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        return {str(name): "service_started" for name in raw}
    return {str(name): str((spec or {}).get("condition", "service_started")) for name, spec in raw.items()}


def _tmpfs(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    return (str(raw),) if isinstance(raw, str) else tuple(str(path).split(":")[0] for path in raw)


@dataclass(frozen=True)
class ComposeProject:
    name: str
    folder: Path
    services: Mapping[str, ServiceSpec]
    volumes: tuple[str, ...]


def load(compose_file: Path, env: Mapping[str, str]) -> ComposeProject:
    """The file as `docker compose` would see it with `env` as its environment (the shell's
    variables first, then `.env`'s, as compose orders them)."""
    document = yaml.safe_load(compose_file.read_text())
    document = _interpolated(document, env)
    folder = compose_file.resolve().parent
    services = {}
    for name, raw in document["services"].items():
        services[name] = ServiceSpec(
            name=name,
            image=raw.get("image"),
            built_here=raw.get("build") is not None,
            command=_command(raw.get("command")),
            environment=_environment(raw.get("environment"), env),
            mounts=_mounts(raw.get("volumes"), folder),
            tmpfs=_tmpfs(raw.get("tmpfs")),
            read_only=bool(raw.get("read_only", False)),
            working_dir=raw.get("working_dir"),
            healthcheck=_healthcheck(raw.get("healthcheck")),
            depends_on=_depends_on(raw.get("depends_on")),
            restart=str(raw.get("restart", "no")),
            stop_grace_period=_duration(raw.get("stop_grace_period"), 10.0),
            user=str(raw["user"]) if raw.get("user") is not None else None,
            published=tuple(str(port) for port in raw.get("ports") or ()),
            unsupported=tuple(sorted(set(raw) - APPLIED - NOT_APPLIED)),
        )
    return ComposeProject(
        name=str(document.get("name") or folder.name),
        folder=folder,
        services=services,
        volumes=tuple(document.get("volumes") or ()),
    )


def compose_environment(env_file: Path, shell: Mapping[str, str]) -> dict[str, str]:
    """What compose interpolates with: `.env`, overridden by the shell's own variables."""
    return {**read_env_file(env_file), **shell}


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage, as `KEY=VALUE` pairs (continuations joined), values
    unexpanded: the rehearsal maps the image's paths onto the host's itself."""
    text = dockerfile.read_text().replace("\\\n", " ")
    stages = re.split(r"(?im)^FROM\s", text)
    env: dict[str, str] = {}
    for line in stages[-1].splitlines():
        if re.match(r"(?i)^\s*ENV\s", line):
            for pair in shlex.split(line.strip()[3:]):
                key, sep, value = pair.partition("=")
                if sep:
                    env[key] = value
    return env


def dockerfile_user(dockerfile: Path) -> str | None:
    users = re.findall(r"(?im)^\s*USER\s+(\S+)", dockerfile.read_text())
    return users[-1] if users else None
