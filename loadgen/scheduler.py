"""Open-loop execution of a plan: each arrival starts at its intended time whatever the earlier ones
are doing, up to a cap on requests in flight; an arrival that finds the cap reached is dropped and
counted, never delayed. Latency is measured from the intended time, so time spent waiting because
the generator itself fell behind is part of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from loadgen.arrivals import Arrival

log = logging.getLogger(__name__)

# Below this, a plain sleep is cheaper than waiting on the stop event, and stopping late by that much
# does not matter.
_STOP_CHECK_SECONDS = 0.05

Execute = Callable[[Arrival, float], Awaitable[None]]
"""Runs one arrival; the float is its intended send time on the event loop clock. Must not raise."""


@dataclass
class Counts:
    started: int = 0
    dropped: int = 0


class OpenLoopScheduler:
    def __init__(
        self, execute: Execute, *, max_in_flight: int, on_drop: Callable[[Arrival], None] | None = None
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._execute = execute
        self._max_in_flight = max_in_flight
        self._on_drop = on_drop
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = Counts()
        self._started_monotonic: float | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def elapsed(self) -> float:
        """Seconds since scheduling started; callable from any thread (the metrics server's)."""
        if self._started_monotonic is None:
            return 0.0
        return time.monotonic() - self._started_monotonic

    async def run(self, arrivals: Iterable[Arrival], *, duration: float | None, stop: asyncio.Event) -> float:
        """Issues arrivals until `duration` seconds have passed or `stop` is set; returns the seconds
        spent scheduling. In-flight requests are left running: see drain()."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        self._started_monotonic = time.monotonic()
        for arrival in arrivals:
            if duration is not None and arrival.offset >= duration:
                await self._sleep_until(start + duration, stop)
                break
            due = start + arrival.offset
            if not await self._sleep_until(due, stop):
                break
            if len(self._tasks) >= self._max_in_flight:
                self.counts.dropped += 1
                if self._on_drop is not None:
                    self._on_drop(arrival)
                continue
            task = loop.create_task(self._run_one(arrival, due))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.counts.started += 1
        return loop.time() - start

    async def _sleep_until(self, when: float, stop: asyncio.Event) -> bool:
        """False when stopped first."""
        if stop.is_set():
            return False
        delay = when - asyncio.get_running_loop().time()
        if delay <= 0:
            # Behind schedule: issue at once, but let responses be processed in between, or a
            # saturated generator would only ever schedule.
            await asyncio.sleep(0)
        elif delay < _STOP_CHECK_SECONDS:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        return not stop.is_set()

    async def _run_one(self, arrival: Arrival, due: float) -> None:
        try:
            await self._execute(arrival, due)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("load generator action %s failed", arrival.action)

    async def drain(self, grace_seconds: float) -> int:
        """Waits up to `grace_seconds` for in-flight requests, then cancels the rest; returns how
        many were cancelled."""
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)
