"""Account use cases: register, log in, resolve the caller. No gRPC, no SQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from grpcdemo.errors import AlreadyExists, InvalidInput, Unauthenticated
from grpcdemo.text import check_text

from userd.domain.models import Credentials, User
from userd.domain.passwords import PasswordHasher
from userd.domain.throttle import LoginThrottle
from userd.domain.tokens import IssuedToken, TokenService
from userd.domain.validation import (
    MAX_PASSWORD_BYTES,
    normalize_email,
    normalize_name,
    validate_password,
)

Clock = Callable[[], datetime]

LOGIN_FAILED = "invalid email or password"


class EmailTaken(AlreadyExists):
    reason = "user_exists"


class UnknownEmail(Unauthenticated):
    reason = "user_not_found"


class WrongPassword(Unauthenticated):
    reason = "invalid_password"


class Throttled(Unauthenticated):
    """Too many failed logins for this email just now: answered exactly like a wrong password."""

    reason = "throttled"


class MissingToken(Unauthenticated):
    reason = "missing_token"


class UserGone(Unauthenticated):
    reason = "user_not_found"


class UserRepository(Protocol):
    async def add(self, user: User, password_hash: str) -> None:
        """Store a new user; raise EmailTaken when the email is already registered."""

    async def credentials_by_email(self, email: str) -> Credentials | None: ...

    async def by_id(self, user_id: str) -> User | None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        tokens: TokenService,
        clock: Clock = utc_now,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._throttle = throttle or LoginThrottle()

    async def register(self, email: str, password: str, name: str) -> User:
        email = normalize_email(email)
        validate_password(password)
        name = normalize_name(name)
        user = User(id=str(uuid.uuid4()), email=email, name=name, created_at=self._clock())
        await self._users.add(user, await self._hasher.hash(password))
        return user

    async def login(self, email: str, password: str) -> IssuedToken:
        email = normalize_email(email)
        check_text(password, "password")
        if not password:
            raise InvalidInput("password is required")
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            # No stored password can be this long, and bcrypt refuses to check it.
            raise InvalidInput(f"password must be at most {MAX_PASSWORD_BYTES} bytes")
        # Throttled, unknown email and wrong password look identical to the caller (same status and
        # message; the last two also the same bcrypt cost); only the error's reason, used by
        # metrics, tells them apart.
        if not self._throttle.admit(email):
            raise Throttled(LOGIN_FAILED)
        failed = False
        try:
            credentials = await self._users.credentials_by_email(email)
            stored_hash = credentials.password_hash if credentials else None
            if not await self._hasher.verify(password, stored_hash):
                failed = True
                raise (WrongPassword if credentials else UnknownEmail)(LOGIN_FAILED)
        finally:
            self._throttle.finished(email, failed=failed)
        assert credentials is not None
        return self._tokens.issue(credentials.user.id, self._clock())

    async def me(self, token: str | None) -> User:
        if token is None:
            raise MissingToken("missing `authorization: Bearer <token>` metadata")
        user_id = self._tokens.verify(token)
        user = await self._users.by_id(user_id)
        if user is None:
            raise UserGone("access token is invalid")
        return user
