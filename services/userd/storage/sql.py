"""UserRepository on SQLAlchemy Core: each method one statement, one connection checkout, timed."""

from __future__ import annotations

from typing import Any, Final

from grpcdemo.persistence.database import Database
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from userd.domain.accounts import EmailTaken
from userd.domain.models import Credentials, User
from userd.storage.schema import users

OPERATIONS: Final = ("add_user", "user_by_email", "user_by_id")

_COLUMNS: Final = (users.c.id, users.c.email, users.c.name, users.c.created_at)
_INSERT: Final = users.insert()
_BY_EMAIL: Final = select(*_COLUMNS, users.c.password_hash).where(users.c.email == bindparam("email"))
_BY_ID: Final = select(*_COLUMNS).where(users.c.id == bindparam("id"))


def _user(row: Any) -> User:
    return User(id=row.id, email=row.email, name=row.name, created_at=row.created_at)


class SqlUserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user: User, password_hash: str) -> None:
        values = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "password_hash": password_hash,
            "created_at": user.created_at,
        }

        def insert(connection: Connection) -> None:
            connection.execute(_INSERT, values)

        try:
            await self._db.run("add_user", insert, write=True)
        except IntegrityError:
            # The unique index on email decides races between concurrent registrations.
            raise EmailTaken("an account with this email already exists") from None

    async def credentials_by_email(self, email: str) -> Credentials | None:
        row = await self._db.run("user_by_email", lambda c: c.execute(_BY_EMAIL, {"email": email}).first())
        return None if row is None else Credentials(_user(row), row.password_hash)

    async def by_id(self, user_id: str) -> User | None:
        row = await self._db.run("user_by_id", lambda c: c.execute(_BY_ID, {"id": user_id}).first())
        return None if row is None else _user(row)
