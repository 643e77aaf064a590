"""Signed access tokens (JWT). Verification pins the algorithm and requires exp, iat, sub, iss, aud."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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


class TokenService:
    def __init__(self, settings: TokenSettings) -> None:
        self._settings = settings

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
        return subject
