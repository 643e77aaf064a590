"""Database errors never carry bound parameters: their text may be logged (an unexpected one with its
traceback, an outage as one line)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from grpcdemo.persistence.database import postgres_engine, sqlite_engine

SECRET_EMAIL = "ann.secret@example.com"
SECRET_HASH = "$2b$04$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"


def test_an_integrity_error_names_the_statement_but_not_the_values() -> None:
    engine = sqlite_engine("sqlite+aiosqlite://")  # in memory: one connection, no files
    insert = sa.text("INSERT INTO users (email, password_hash) VALUES (:email, :password_hash)")
    values = {"email": SECRET_EMAIL, "password_hash": SECRET_HASH}
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("CREATE TABLE users (email TEXT UNIQUE, password_hash TEXT)"))
            connection.execute(insert, values)
            with pytest.raises(sa.exc.IntegrityError) as caught:
                connection.execute(insert, values)
    finally:
        engine.dispose()

    text = str(caught.value)
    assert "INSERT INTO users" in text
    assert SECRET_EMAIL not in text
    assert SECRET_HASH not in text
    assert SECRET_EMAIL not in repr(caught.value)


def test_postgres_engines_hide_parameters_too() -> None:
    # Creating an engine does not connect, so no server is needed to check the setting.
    engine = postgres_engine("postgresql+asyncpg://user@127.0.0.1/db")
    assert engine.sync_engine.hide_parameters
    assert engine.sync_engine.pool._pre_ping
