"""The body of every service's Alembic env.py: migrations run on the connection the service hands
over (grpcdemo.persistence.engine.migrate), or, from the `alembic` CLI, on DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from grpcdemo.persistence.engine import create_engine


def run(target_metadata: MetaData, default_version_table: str) -> None:
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

    async def standalone() -> None:
        engine = create_engine(os.environ["DATABASE_URL"])
        async with engine.begin() as conn:
            await conn.run_sync(configure_and_run)
        await engine.dispose()

    asyncio.run(standalone())
