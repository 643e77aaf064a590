"""Alembic migrations run programmatically: on the service's own connection at start-up (or by
`<svc> migrate`), and the body of every service's `env.py`. Each service keeps its own version table,
so both may share one database; migrations only ever add."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection


def alembic_config(script_location: Path, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["version_table"] = version_table
    return config


def upgrade(connection: Connection, script_location: Path, version_table: str) -> None:
    """Upgrade to head on `connection` (inside the caller's transaction)."""
    config = alembic_config(script_location, version_table)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_env(target_metadata: MetaData, default_version_table: str) -> None:
    """The body of a service's migrations/env.py: on the connection handed over by `upgrade`, or,
    from the `alembic` command line, on DATABASE_URL."""
    config = context.config
    version_table = config.attributes.get("version_table", default_version_table)

    def configure_and_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        configure_and_run(connection)
        return
    from grpcdemo.persistence.database import is_sqlite, postgres_engine, sqlite_engine

    url = os.environ["DATABASE_URL"]
    if is_sqlite(url):
        engine = sqlite_engine(url)
        with engine.begin() as conn:
            configure_and_run(conn)
        engine.dispose()
        return

    import asyncio

    async def standalone() -> None:
        async_engine = postgres_engine(url)
        async with async_engine.begin() as conn:
            await conn.run_sync(configure_and_run)
        await async_engine.dispose()

    asyncio.run(standalone())
