"""Composition root: builds userd from its config. Nothing is constructed at import time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.observability.service import ServiceObservability
from grpcdemo.persistence.database import Database
from grpcdemo.runtime.host import ServiceHost
from prometheus_client import CollectorRegistry

from userd.config import UserdConfig
from userd.domain.accounts import Accounts, Clock, UserRepository, utc_now
from userd.domain.passwords import PasswordHasher
from userd.domain.throttle import LoginThrottle
from userd.domain.tokens import TokenService, TokenSettings
from userd.metrics import UserdMetrics
from userd.servicer import UserServicer
from userd.storage import sql

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_userd"
USER_SERVICE = user_pb2.DESCRIPTOR.services_by_name["UserService"]


@dataclass
class Overrides:
    """Test seams: a repository (no database is opened then), a clock, an observability bundle
    (isolated registry, in-memory span exporter)."""

    users: UserRepository | None = None
    clock: Clock | None = None
    observability: ServiceObservability | None = None


async def migrate(config: UserdConfig) -> None:
    """`userd migrate`: upgrade DATABASE_URL to head and exit."""
    db = Database(config.common.database_url, service="userd", registry=CollectorRegistry(), operations=())
    try:
        await db.migrate(MIGRATIONS, VERSION_TABLE)
    finally:
        await db.close()


async def create_server(config: UserdConfig, overrides: Overrides | None = None) -> ServiceHost:
    overrides = overrides or Overrides()
    host = ServiceHost.open(config.common, overrides.observability)
    try:
        users = overrides.users
        if users is None:
            db = await host.open_database(
                sql.OPERATIONS, MIGRATIONS if config.migrate_on_start else None, VERSION_TABLE
            )
            users = sql.SqlUserRepository(db)
        tokens = TokenService(
            TokenSettings(
                secret=config.jwt_secret,
                ttl_seconds=config.jwt_ttl_seconds,
                issuer=config.jwt_issuer,
                audience=config.jwt_audience,
            )
        )
        hasher = PasswordHasher(
            config.bcrypt_rounds,
            max_concurrent=config.bcrypt_max_concurrent,
            max_waiting=config.bcrypt_max_waiting,
        )

        async def close_hasher() -> None:
            hasher.close()

        host.on_stop(close_hasher)
        throttle = LoginThrottle(config.login_throttle_failures, config.login_throttle_window_seconds)
        accounts = Accounts(users, hasher, tokens, clock=overrides.clock or utc_now, throttle=throttle)
        servicer = UserServicer(accounts, UserdMetrics(host.registry))
        await host.serve(
            lambda server: user_pb2_grpc.add_UserServiceServicer_to_server(servicer, server),  # type: ignore[no-untyped-call]
            [USER_SERVICE],
        )
    except BaseException:
        await host.stop(grace_seconds=0)
        raise
    return host
