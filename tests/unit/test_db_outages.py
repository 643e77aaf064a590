"""Which database errors are an outage (UNAVAILABLE, retry later) and which are a bug (INTERNAL)."""

from __future__ import annotations

import sqlite3

import pytest
from grpcdemo.persistence.outages import is_outage
from sqlalchemy import exc as sa_exc


class PostgresError(Exception):
    """Stands in for asyncpg's errors, which carry the SQLSTATE as `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def wrapped(cause: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    """How SQLAlchemy hands a driver error over: a DBAPIError whose `orig` (and cause) is it."""
    error = sa_exc.DBAPIError("SELECT 1", None, cause, connection_invalidated=invalidated)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        wrapped(ConnectionRefusedError(111, "Connection refused")),
        wrapped(ConnectionResetError(104, "Connection reset by peer")),
        wrapped(OSError(113, "No route to host")),
        wrapped(RuntimeError("lost"), invalidated=True),
        wrapped(PostgresError("08006")),  # connection failure
        wrapped(PostgresError("53300")),  # too many connections
        wrapped(PostgresError("57P01")),  # admin shutdown
        wrapped(PostgresError("57P03")),  # cannot connect now (starting up)
        wrapped(PostgresError("40001")),  # serialization failure: a retry resolves it
        wrapped(sqlite3.OperationalError("database is locked")),
        wrapped(sqlite3.OperationalError("disk I/O error")),
        sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
        TimeoutError(),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_outages(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(PostgresError("22021")),  # character not in repertoire (a NUL that got through)
        wrapped(PostgresError("42P01")),  # undefined table
        wrapped(PostgresError("23505")),  # unique violation: the repository decides
        wrapped(sqlite3.OperationalError("no such table: users")),
        sa_exc.IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed")),
        ValueError("naive datetime given to a UTC column"),
    ],
)
def test_bugs_and_caller_data_are_not_outages(error: BaseException) -> None:
    assert not is_outage(error)
