"""The live progress line: rewritten in place every second on a terminal, printed as a plain line
every --progress-interval seconds otherwise (logs, CI). Figures cover the time since the previous
line; "errors" are unexpected statuses (see loadgen.kinds)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from loadgen.stats import Recorder, Window

TTY_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class Snapshot:
    elapsed: float
    target_rps: float
    in_flight: int
    dropped: int


def format_line(snapshot: Snapshot, window: Window, seconds: float) -> str:
    rate = window.calls / seconds if seconds > 0 else 0.0
    return (
        f"[{snapshot.elapsed:7.1f}s] {rate:7.1f}/s (target {snapshot.target_rps:g})  "
        f"in-flight {snapshot.in_flight:4d}  errors {window.unexpected:5d}  dropped {snapshot.dropped:5d}  "
        f"p50 {_ms(window.latency.percentile(0.5))}  p99 {_ms(window.latency.percentile(0.99))}"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}ms"


class Progress:
    def __init__(
        self,
        recorder: Recorder,
        snapshot: Callable[[], Snapshot],
        stream: TextIO,
        *,
        interval: float,
        tty_interval: float = TTY_INTERVAL_SECONDS,
    ) -> None:
        self._recorder = recorder
        self._snapshot = snapshot
        self._stream = stream
        self._tty = stream.isatty()
        self._interval = tty_interval if self._tty else interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._recorder.take_window()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self._interval)
            now = loop.time()
            line = format_line(self._snapshot(), self._recorder.take_window(), now - last)
            last = now
            if self._tty:
                # Carriage return and erase-line rewrite the line in place.
                self._stream.write("\r\x1b[2K" + line)
            else:
                self._stream.write(line + "\n")
            self._stream.flush()
