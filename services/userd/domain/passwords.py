"""bcrypt hashing off the event loop, with a constant-cost check for unknown accounts."""

from __future__ import annotations

import asyncio

import bcrypt


class PasswordHasher:
    def __init__(self, rounds: int) -> None:
        self._rounds = rounds
        # Checked against when the email is unknown, so that a miss costs the same bcrypt work as a
        # wrong password and login timing does not reveal which accounts exist.
        self._decoy_hash = bcrypt.hashpw(b"decoy-password-never-valid", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(self._rounds))
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True only when `password_hash` is given and matches; costs one bcrypt check either way."""
        target = self._decoy_hash if password_hash is None else password_hash.encode()
        matches = await asyncio.to_thread(bcrypt.checkpw, password.encode(), target)
        return matches and password_hash is not None
