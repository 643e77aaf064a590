"""Typed reading of environment variables: every service parses its config once, through this."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_host_port(name: str, raw: str) -> HostPort:
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{name}={raw!r}: expected HOST:PORT, e.g. 127.0.0.1:50051")
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}={raw!r}: port must be 0..65535")
    return HostPort(host, port)


class Env:
    """Reads typed values from a mapping (os.environ in production, a dict in tests)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def string(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected an integer") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={value}: must be between {minimum} and {maximum}")
        return value

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected a number") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={value}: must be between {minimum} and {maximum}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}={raw!r}: expected true or false")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
        return value

    def host_port(self, name: str, default: str) -> HostPort:
        return parse_host_port(name, self.string(name, default))


@dataclass(frozen=True)
class CommonConfig:
    """Settings every service shares."""

    service_name: str
    grpc_addr: HostPort
    metrics_addr: HostPort
    database_url: str
    database_probe_seconds: float
    log_level: str
    log_format: str
    shutdown_grace_seconds: float
    shutdown_drain_seconds: float
    max_concurrent_rpcs: int
    max_connection_age_seconds: float
    max_connection_age_grace_seconds: float
    fault_injection_enabled: bool
    fault_injection_token: str | None


LOG_LEVELS = ("debug", "info", "warning", "error")


def read_common(env: Env, *, service_name: str, grpc_default: str, metrics_default: str) -> CommonConfig:
    return CommonConfig(
        service_name=service_name,
        grpc_addr=env.host_port("GRPC_ADDR", grpc_default),
        metrics_addr=env.host_port("METRICS_ADDR", metrics_default),
        database_url=env.string("DATABASE_URL", f"sqlite+aiosqlite:///.data/{service_name}.sqlite3"),
        database_probe_seconds=env.number("DATABASE_PROBE_SECONDS", 5.0, minimum=0.1, maximum=300.0),
        log_level=env.choice("LOG_LEVEL", "info", LOG_LEVELS),
        log_format=env.choice("LOG_FORMAT", "console", ("json", "console")),
        shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0, maximum=300.0),
        shutdown_drain_seconds=env.number("SHUTDOWN_DRAIN_SECONDS", 0.0, minimum=0.0, maximum=300.0),
        max_concurrent_rpcs=env.integer("GRPC_MAX_CONCURRENT_RPCS", 256, minimum=1, maximum=100_000),
        max_connection_age_seconds=env.number(
            "GRPC_MAX_CONNECTION_AGE_SECONDS", 300.0, minimum=1.0, maximum=86_400.0
        ),
        max_connection_age_grace_seconds=env.number(
            "GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS", 30.0, minimum=0.0, maximum=3_600.0
        ),
        fault_injection_enabled=env.boolean("FAULT_INJECTION_ENABLED", False),
        fault_injection_token=_fault_token(env),
    )


MIN_FAULT_TOKEN_LENGTH = 16


def _fault_token(env: Env) -> str | None:
    token = env.optional("FAULT_INJECTION_TOKEN")
    if token is not None and len(token) < MIN_FAULT_TOKEN_LENGTH:
        raise ConfigError(
            f"FAULT_INJECTION_TOKEN is too short: use at least {MIN_FAULT_TOKEN_LENGTH} characters"
        )
    return token
