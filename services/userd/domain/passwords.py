"""bcrypt hashing off the event loop, bounded, with a constant-cost check for unknown accounts.

bcrypt at cost 12 is ~0.25 s of a core. At most `max_concurrent` hashes run at once (on their own
threads) and at most `max_waiting` more wait for one; a call beyond that is refused at once with
Overloaded (RESOURCE_EXHAUSTED, "try again later") rather than queued behind seconds of work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt
from grpcdemo.errors import Overloaded

T = TypeVar("T")


class PasswordHasher:
    def __init__(self, rounds: int, *, max_concurrent: int = 2, max_waiting: int = 32) -> None:
        self._rounds = rounds
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="bcrypt")
        self._capacity = max_concurrent + max_waiting
        self._pending = 0
        # Checked against when the email is unknown, so that a miss costs the same bcrypt work as a
        # wrong password and login timing does not reveal which accounts exist.
        self._decoy_hash = bcrypt.hashpw(b"decoy-password-never-valid", bcrypt.gensalt(rounds))

    @property
    def pending(self) -> int:
        """Hashes running or waiting now."""
        return self._pending

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        if self._pending >= self._capacity:
            raise Overloaded("too many logins and registrations in progress; try again later")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            self._pending -= 1

    async def hash(self, password: str) -> str:
        hashed = await self._run(bcrypt.hashpw, password.encode(), bcrypt.gensalt(self._rounds))
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True only when `password_hash` is given and matches; costs one bcrypt check either way."""
        target = self._decoy_hash if password_hash is None else password_hash.encode()
        matches = await self._run(bcrypt.checkpw, password.encode(), target)
        return matches and password_hash is not None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
