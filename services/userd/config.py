"""userd configuration, parsed and validated once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from grpcdemo.runtime.config import CommonConfig, ConfigError, Env, read_common

MIN_JWT_SECRET_BYTES = 32


@dataclass(frozen=True)
class UserdConfig:
    common: CommonConfig
    jwt_secret: bytes
    jwt_ttl_seconds: int
    jwt_issuer: str
    jwt_audience: str
    bcrypt_rounds: int
    bcrypt_max_concurrent: int
    bcrypt_max_waiting: int
    login_throttle_failures: int
    login_throttle_window_seconds: float
    migrate_on_start: bool

    def __repr__(self) -> str:
        # The secret must never reach a log line or a traceback through repr().
        return f"UserdConfig(common={self.common!r}, jwt_ttl_seconds={self.jwt_ttl_seconds}, ...)"


def load(environ: Mapping[str, str] | None = None) -> UserdConfig:
    env = Env(os.environ if environ is None else environ)
    secret = env.optional("JWT_SECRET")
    if secret is None:
        raise ConfigError(
            "JWT_SECRET is required: set it to a random value of at least 32 bytes "
            "(`make up` generates one into .env)"
        )
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET is too short: at least {MIN_JWT_SECRET_BYTES} bytes are required")
    return UserdConfig(
        common=read_common(
            env, service_name="userd", grpc_default="127.0.0.1:50051", metrics_default="127.0.0.1:9091"
        ),
        jwt_secret=secret.encode(),
        jwt_ttl_seconds=env.integer("JWT_TTL_SECONDS", 900, minimum=1, maximum=7 * 24 * 3600),
        jwt_issuer=env.string("JWT_ISSUER", "userd"),
        jwt_audience=env.string("JWT_AUDIENCE", "grpc-demo"),
        bcrypt_rounds=env.integer("BCRYPT_ROUNDS", 12, minimum=4, maximum=16),
        bcrypt_max_concurrent=env.integer(
            "BCRYPT_MAX_CONCURRENT", os.cpu_count() or 2, minimum=1, maximum=64
        ),
        bcrypt_max_waiting=env.integer("BCRYPT_MAX_WAITING", 32, minimum=0, maximum=10_000),
        login_throttle_failures=env.integer("LOGIN_THROTTLE_FAILURES", 5, minimum=1, maximum=1000),
        login_throttle_window_seconds=env.number(
            "LOGIN_THROTTLE_WINDOW_SECONDS", 30.0, minimum=1.0, maximum=3600.0
        ),
        migrate_on_start=env.boolean("MIGRATE_ON_START", True),
    )
