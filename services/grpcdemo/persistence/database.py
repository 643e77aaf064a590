"""`Database`: where a service's repository operations run, timed, with outages turned into a
retryable error and a health signal.

Repositories write each operation as a plain function of a SQLAlchemy Core `Connection` (statements
built once at import, so SQLAlchemy's compiled cache serves them) and hand it to `run`: one
connection checkout per operation, one transaction for a write.

- SQLite runs the function synchronously on the event loop. An operation here is 20-60 us, and a
  hop to a thread and back costs three times that in CPU (aiosqlite makes two per statement, ~20
  times); in WAL mode readers never wait and another process's write holds the lock for well under a
  millisecond. `busy_timeout` bounds the rare wait (SQLITE_BUSY_TIMEOUT_MS), and past it the call
  answers UNAVAILABLE instead of stalling the loop.
- PostgreSQL runs it through asyncpg (`AsyncConnection.run_sync`), with bounded connect, command and
  pool timeouts, and a pre-ping that notices a connection lost while idle.

An operation that fails because the database is unreachable or out of capacity raises
`DatabaseUnavailable` (UNAVAILABLE, "retry later"), logs one line without a traceback (at most one a
few seconds while the outage lasts) and marks the database down; any success marks it up again. A
probe (`SELECT 1` every `probe_interval`) keeps `<svc>_database_up` current while no call comes, and
reports every change to `on_change`, which the service host turns into gRPC health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.engine import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from grpcdemo.errors import DependencyUnavailable
from grpcdemo.persistence.outages import is_outage
from grpcdemo.persistence.timing import QueryTimer

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[Connection], T]

SQLITE_BUSY_TIMEOUT_MS: Final = 1000
POSTGRES_CONNECT_TIMEOUT_SECONDS: Final = 3.0
POSTGRES_COMMAND_TIMEOUT_SECONDS: Final = 5.0
POSTGRES_POOL_TIMEOUT_SECONDS: Final = 3.0
PROBE_TIMEOUT_SECONDS: Final = 3.0
# While an outage lasts, its log line repeats at most this often.
OUTAGE_LOG_INTERVAL_SECONDS: Final = 5.0


class DatabaseUnavailable(DependencyUnavailable):
    reason = "database_unavailable"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_engine(url: str) -> Engine:
    """A synchronous engine on the stdlib driver for `sqlite[+aiosqlite]:///path`: one connection, used
    from the event loop's thread."""
    parsed = make_url(url).set(drivername="sqlite")
    database = parsed.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_sync_engine(
        parsed,
        poolclass=StaticPool,
        connect_args={"check_same_thread": False},
        # SQLAlchemy puts bound parameters (emails, password hashes) into the text of its errors, and
        # unexpected errors are logged with that text; the statement is enough.
        hide_parameters=True,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during a write; synchronous=NORMAL is WAL's safe setting (a commit is
    # durable against a process crash, and the file stays consistent on power loss); busy_timeout
    # makes a writer wait a little for another process's write instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def postgres_engine(url: str) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_timeout=POSTGRES_POOL_TIMEOUT_SECONDS,
        hide_parameters=True,
        connect_args={
            "timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
            "command_timeout": POSTGRES_COMMAND_TIMEOUT_SECONDS,
        },
    )


class Database:
    def __init__(
        self,
        url: str,
        *,
        service: str,
        registry: CollectorRegistry,
        operations: Iterable[str],
        probe_interval: float = 5.0,
    ) -> None:
        self.url = url
        self._sqlite = sqlite_engine(url) if is_sqlite(url) else None
        self._postgres = None if self._sqlite is not None else postgres_engine(url)
        self._timer = QueryTimer(service, operations, registry)
        self._up_gauge = Gauge(
            f"{service}_database_up",
            "1 while the service's database answers, 0 while it is unreachable (calls answer UNAVAILABLE).",
            registry=registry,
        )
        self._up = True
        self._up_gauge.set(1)
        self._probe_interval = probe_interval
        self._on_change: Callable[[bool], Awaitable[None]] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._next_outage_log = 0.0

    @property
    def up(self) -> bool:
        return self._up

    @property
    def dialect(self) -> str:
        return "sqlite" if self._sqlite is not None else "postgresql"

    # -- operations ----------------------------------------------------------------------------------

    async def run(self, operation: str, work: Work[T], *, write: bool = False) -> T:
        """`work(connection)` in one checkout (and, for `write`, one transaction), timed as `operation`."""
        start = time.perf_counter()
        try:
            if self._sqlite is not None:
                with self._sqlite.begin() if write else self._sqlite.connect() as connection:
                    result = work(connection)
            else:
                assert self._postgres is not None
                async with self._postgres.begin() if write else self._postgres.connect() as connection:
                    result = await connection.run_sync(work)
        except Exception as error:
            if not is_outage(error):
                raise
            self._log_outage(operation, error)
            await self._set_up(False)
            raise DatabaseUnavailable("database unavailable; retry later") from None
        finally:
            self._timer.observe(operation, time.perf_counter() - start)
        if not self._up:
            await self._set_up(True)
        return result

    def run_sync(self, work: Work[T], *, write: bool = False) -> T:
        """For migrations and tools: SQLite only (PostgreSQL has no synchronous engine here)."""
        if self._sqlite is None:
            raise RuntimeError("run_sync is for SQLite")
        with self._sqlite.begin() if write else self._sqlite.connect() as connection:
            return work(connection)

    def _log_outage(self, operation: str, error: BaseException) -> None:
        now = time.monotonic()
        if now < self._next_outage_log:
            return
        self._next_outage_log = now + OUTAGE_LOG_INTERVAL_SECONDS
        # The class and first line name the cause; no traceback, no parameters (hide_parameters).
        first_line = str(error).splitlines()[0][:200] if str(error) else ""
        log.warning(
            "database unavailable",
            extra={"operation": operation, "error": f"{type(error).__name__}: {first_line}"},
        )

    async def _set_up(self, up: bool) -> None:
        if up == self._up:
            return
        self._up = up
        self._up_gauge.set(1 if up else 0)
        if up:
            self._next_outage_log = 0.0
            log.warning("database reachable again")
        if self._on_change is not None:
            await self._on_change(up)

    # -- probing -------------------------------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            await asyncio.wait_for(
                self.run("ping", lambda c: c.execute(text("SELECT 1")).scalar_one()), PROBE_TIMEOUT_SECONDS
            )
        except (DatabaseUnavailable, TimeoutError):
            await self._set_up(False)
            return False
        return True

    def start_probing(self, on_change: Callable[[bool], Awaitable[None]]) -> None:
        self._on_change = on_change
        self._probe_task = asyncio.get_running_loop().create_task(self._probe(), name="database-probe")

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            try:
                await self.ping()
            except Exception:
                log.exception("database probe failed")

    async def close(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._postgres is not None:
            await self._postgres.dispose()

    # -- migrations ----------------------------------------------------------------------------------

    async def migrate(self, script_location: Path, version_table: str) -> None:
        from grpcdemo.persistence.migrations import upgrade

        if self._sqlite is not None:
            with self._sqlite.begin() as connection:
                upgrade(connection, script_location, version_table)
            return
        assert self._postgres is not None
        async with self._postgres.begin() as connection:
            await connection.run_sync(upgrade, script_location, version_table)
