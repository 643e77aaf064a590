from __future__ import annotations

from grpcdemo.persistence.timing import NullTimer, QueryTimer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from userd.domain.accounts import EmailTaken
from userd.domain.models import Credentials, User
from userd.storage.schema import UserRow


def _user(row: UserRow) -> User:
    return User(id=row.id, email=row.email, name=row.name, created_at=row.created_at)


OPERATIONS = ("add_user", "user_by_email", "user_by_id")


class SqlUserRepository:
    def __init__(self, engine: AsyncEngine, timer: QueryTimer | NullTimer | None = None) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._timer = timer or NullTimer()

    async def add(self, user: User, password_hash: str) -> None:
        row = UserRow(
            id=user.id,
            email=user.email,
            name=user.name,
            password_hash=password_hash,
            created_at=user.created_at,
        )
        try:
            with self._timer.time("add_user"):
                async with self._sessions.begin() as session:
                    session.add(row)
        except IntegrityError:
            # The unique index on email decides races between concurrent registrations.
            raise EmailTaken("an account with this email already exists") from None

    async def credentials_by_email(self, email: str) -> Credentials | None:
        with self._timer.time("user_by_email"):
            async with self._sessions() as session:
                row = await session.scalar(select(UserRow).where(UserRow.email == email))
        return None if row is None else Credentials(_user(row), row.password_hash)

    async def by_id(self, user_id: str) -> User | None:
        with self._timer.time("user_by_id"):
            async with self._sessions() as session:
                row = await session.get(UserRow, user_id)
        return None if row is None else _user(row)
