"""docker/postgres/initdb's script against the real local PostgreSQL, with role and database names of
its own: each service's role logs in, owns its database and can create tables there, and cannot even
connect to the other service's database; neither is a superuser."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.support.databases import POSTGRES_ADMIN_DSN

pytestmark = pytest.mark.postgres

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "postgres" / "initdb" / "roles-and-databases.psql"


def psql(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("psql")
    if binary is None:
        pytest.skip("psql not installed (Debian package postgresql-client)")
    return subprocess.run(
        [binary, POSTGRES_ADMIN_DSN, "-v", "ON_ERROR_STOP=1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )


async def connect(role: str, password: str, database: str) -> asyncpg.Connection:
    admin = urlsplit(POSTGRES_ADMIN_DSN)
    return await asyncpg.connect(
        host=admin.hostname,
        port=admin.port or 5432,
        user=role,
        password=password,
        database=database,
        timeout=5,
    )


async def test_each_role_owns_its_database_and_no_other() -> None:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "userd_role": f"userd_{suffix}",
        "userd_db": f"userd_db_{suffix}",
        "userd_password": uuid.uuid4().hex,
        "orderd_role": f"orderd_{suffix}",
        "orderd_db": f"orderd_db_{suffix}",
        "orderd_password": uuid.uuid4().hex,
    }
    variables = [arg for key, value in names.items() for arg in ("-v", f"{key}={value}")]
    if psql("-c", "SELECT 1").returncode != 0:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_DSN}")
    result = await asyncio.to_thread(psql, *variables, "-f", str(SCRIPT))
    try:
        assert result.returncode == 0, result.stderr
        for service, other in (("userd", "orderd"), ("orderd", "userd")):
            role, password = names[f"{service}_role"], names[f"{service}_password"]
            own = await connect(role, password, names[f"{service}_db"])
            try:
                await own.execute("CREATE TABLE t (id int)")
                assert (
                    await own.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
                )
            finally:
                await own.close()
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connect(role, password, names[f"{other}_db"])
    finally:
        drop = [
            f'DROP DATABASE IF EXISTS "{names["userd_db"]}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{names["orderd_db"]}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{names["userd_role"]}"',
            f'DROP ROLE IF EXISTS "{names["orderd_role"]}"',
        ]
        for statement in drop:
            psql("-c", statement)
