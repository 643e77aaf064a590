from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Credentials:
    """A stored user with the bcrypt hash that login checks against."""

    user: User
    password_hash: str
