"""Telling a database that is unreachable or out of capacity (the caller should retry: UNAVAILABLE)
from an error in this code or its queries (INTERNAL)."""

from __future__ import annotations

import asyncio
from typing import Final

from sqlalchemy import exc as sa_exc

# PostgreSQL SQLSTATE classes and codes that mean "not now" rather than "wrong": connection exceptions
# (08), insufficient resources (53), operator intervention such as a shutdown or a server still
# starting (57P01-57P05), and a serialization failure or deadlock that a retry resolves (40001, 40P01).
_RETRYABLE_SQLSTATE_CLASSES: Final = ("08", "53")
_RETRYABLE_SQLSTATES: Final = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "40001", "40P01"})

# SQLite's own words for the file being unusable right now (another process holding the write lock
# past busy_timeout, the disk, the file gone); "no such table" and the like stay errors.
_SQLITE_UNAVAILABLE: Final = ("database is locked", "disk i/o error", "unable to open database file")


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_outage(error: BaseException) -> bool:
    """Whether `error`, raised by a database operation, means the database cannot serve now."""
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection to give in time
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    for cause in _chain(error):
        if isinstance(cause, ConnectionError | TimeoutError | asyncio.TimeoutError | OSError):
            return True
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(sqlstate, str) and (
            sqlstate[:2] in _RETRYABLE_SQLSTATE_CLASSES or sqlstate in _RETRYABLE_SQLSTATES
        ):
            return True
        name = type(cause).__name__
        # asyncpg's own classes for a connection that went away (no sqlstate on them).
        if name in ("ConnectionDoesNotExistError", "InterfaceError") and "closed" in str(cause).lower():
            return True
        if name == "OperationalError" and any(text in str(cause).lower() for text in _SQLITE_UNAVAILABLE):
            return True
    return False
