"""Composition root: builds userd from its config. Nothing is constructed at import time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from genproto.user.v1 import user_pb2, user_pb2_grpc
from prometheus_client import CollectorRegistry
from shared import db
from shared.db_metrics import QueryTimer
from shared.grpc_server import RunningServer, start_grpc_server
from sqlalchemy.ext.asyncio import AsyncEngine

from userd.config import UserdConfig
from userd.domain.accounts import Accounts, Clock, UserRepository, utc_now
from userd.domain.passwords import PasswordHasher
from userd.domain.tokens import TokenService, TokenSettings
from userd.metrics import UserdMetrics
from userd.servicer import UserServicer
from userd.storage import sql

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_userd"
SERVICE_NAME = user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name


@dataclass
class Overrides:
    """Test seams: replace the repository (no database is opened then) or the clock."""

    users: UserRepository | None = None
    clock: Clock | None = None
    registry: CollectorRegistry | None = None


@dataclass
class UserdService:
    config: UserdConfig
    grpc: RunningServer
    registry: CollectorRegistry
    engine: AsyncEngine | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace_seconds: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        grace = self.config.common.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        await self.grpc.stop(grace)
        if self.engine is not None:
            await self.engine.dispose()


async def migrate(config: UserdConfig) -> None:
    engine = db.create_engine(config.common.database_url)
    try:
        await db.migrate(engine, MIGRATIONS, VERSION_TABLE)
    finally:
        await engine.dispose()


async def create_server(config: UserdConfig, overrides: Overrides | None = None) -> UserdService:
    overrides = overrides or Overrides()
    registry = overrides.registry or CollectorRegistry()
    engine: AsyncEngine | None = None
    users = overrides.users
    if users is None:
        engine = db.create_engine(config.common.database_url)
        if config.migrate_on_start:
            await db.migrate(engine, MIGRATIONS, VERSION_TABLE)
        users = sql.SqlUserRepository(engine, QueryTimer("userd", sql.OPERATIONS, registry))
    accounts = Accounts(
        users,
        PasswordHasher(config.bcrypt_rounds),
        TokenService(
            TokenSettings(
                secret=config.jwt_secret,
                ttl_seconds=config.jwt_ttl_seconds,
                issuer=config.jwt_issuer,
                audience=config.jwt_audience,
            )
        ),
        clock=overrides.clock or utc_now,
    )
    servicer = UserServicer(accounts, UserdMetrics(registry))
    running = await start_grpc_server(
        config.common.grpc_addr,
        lambda server: user_pb2_grpc.add_UserServiceServicer_to_server(servicer, server),  # type: ignore[no-untyped-call]
        [SERVICE_NAME],
    )
    return UserdService(config=config, grpc=running, registry=registry, engine=engine)
