"""Failed-login throttling per normalised email, whether or not the account exists.

An email may have at most `failures` logins that failed (wrong password, unknown account) or are
still being checked within any `window` seconds; past that, attempts are refused before any bcrypt
work, answered exactly like a wrong password. Attempts in flight count, so a burst of concurrent
guesses is cut at `failures` too, not only the ones after it. The lock lifts by itself `window`
seconds after the last counted failure (refused attempts do not count), so an attacker holds an
account closed only while attacking it, and the owner is refused for at most `window` seconds after
the attack stops. State is per process (see README: with N replicas the allowance is N times).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# Every email that failed within the window is remembered; past this many, the longest-idle one is
# forgotten first, so random emails cannot grow memory without bound.
MAX_TRACKED_EMAILS: Final = 100_000


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class LoginThrottle:
    def __init__(
        self,
        failures: int = 5,
        window_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED_EMAILS,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.failures = failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._max_tracked = max_tracked
        self._entries: dict[str, _Entry] = {}

    def _entry(self, email: str, now: float) -> _Entry | None:
        entry = self._entries.get(email)
        if entry is None:
            return None
        horizon = now - self.window_seconds
        while entry.failures and entry.failures[0] <= horizon:
            entry.failures.popleft()
        if not entry.failures and entry.in_flight == 0:
            del self._entries[email]
            return None
        return entry

    def admit(self, email: str) -> bool:
        """True: the attempt may be checked (and is in flight until `finished`); False: refuse it."""
        now = self._clock()
        entry = self._entry(email, now)
        if entry is None:
            if len(self._entries) >= self._max_tracked:
                del self._entries[next(iter(self._entries))]
            entry = self._entries[email] = _Entry()
        elif len(entry.failures) + entry.in_flight >= self.failures:
            return False
        else:
            # Most recently active last, so the oldest is evicted first.
            self._entries[email] = self._entries.pop(email)
        entry.in_flight += 1
        return True

    def finished(self, email: str, *, failed: bool) -> None:
        entry = self._entries.get(email)
        if entry is None:
            return
        entry.in_flight = max(0, entry.in_flight - 1)
        if failed:
            entry.failures.append(self._clock())
        self._entry(email, self._clock())

    def tracked(self) -> int:
        return len(self._entries)
