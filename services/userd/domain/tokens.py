"""Signed access tokens (JWT). Verification pins the algorithm and requires exp, iat, sub, iss, aud.

A token verified once is remembered (VerifiedTokens) until it expires, so the same token presented
again (every call orderd authenticates, every Me) costs a dictionary lookup instead of a signature
check and claim validation; a refused token is never remembered."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import jwt
from grpcdemo.errors import Unauthenticated

REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]


@dataclass(frozen=True)
class TokenSettings:
    secret: bytes
    ttl_seconds: int
    issuer: str
    audience: str
    algorithm: str = "HS256"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


class InvalidToken(Unauthenticated):
    reason = "invalid_token"


# Each entry is a token string (~200 bytes) and its subject: a full cache is a few MB.
MAX_REMEMBERED_TOKENS: Final = 10_000


class VerifiedTokens:
    """Tokens that passed verification, with their subject, until their own `exp`. Bounded: when
    full, the oldest entry goes first. A plain dict kept in insertion order does both."""

    def __init__(self, capacity: int = MAX_REMEMBERED_TOKENS, now: Callable[[], float] = time.time) -> None:
        self._capacity = capacity
        self._now = now
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, token: str) -> str | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        subject, expires_at = entry
        if self._now() >= expires_at:
            del self._entries[token]
            return None
        return subject

    def remember(self, token: str, subject: str, expires_at: float) -> None:
        if len(self._entries) >= self._capacity:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (subject, expires_at)

    def __len__(self) -> int:
        return len(self._entries)


class TokenService:
    def __init__(self, settings: TokenSettings, verified: VerifiedTokens | None = None) -> None:
        self._settings = settings
        self._verified = verified if verified is not None else VerifiedTokens()

    def issue(self, subject: str, now: datetime) -> IssuedToken:
        expires_at = now + timedelta(seconds=self._settings.ttl_seconds)
        claims = {
            "sub": subject,
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        token = jwt.encode(claims, self._settings.secret, algorithm=self._settings.algorithm)
        return IssuedToken(token, expires_at.replace(microsecond=0))

    def verify(self, token: str) -> str:
        """Return the subject (user id) of a valid token, else raise InvalidToken."""
        remembered = self._verified.get(token)
        if remembered is not None:
            return remembered
        try:
            claims = jwt.decode(
                token,
                self._settings.secret,
                algorithms=[self._settings.algorithm],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("access token has expired; log in again") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("access token is invalid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("access token is invalid")
        # `exp` is required and was checked to be a number in the future.
        self._verified.remember(token, subject, float(claims["exp"]))
        return subject
