"""In-memory UserRepository for unit tests and test overrides of the composition root."""

from __future__ import annotations

from userd.domain.accounts import EmailTaken
from userd.domain.models import Credentials, User


class InMemoryUserRepository:
    def __init__(self) -> None:
        self._by_id: dict[str, Credentials] = {}

    async def add(self, user: User, password_hash: str) -> None:
        if any(c.user.email == user.email for c in self._by_id.values()):
            raise EmailTaken("an account with this email already exists")
        self._by_id[user.id] = Credentials(user, password_hash)

    async def credentials_by_email(self, email: str) -> Credentials | None:
        return next((c for c in self._by_id.values() if c.user.email == email), None)

    async def by_id(self, user_id: str) -> User | None:
        credentials = self._by_id.get(user_id)
        return credentials.user if credentials else None
