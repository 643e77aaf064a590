"""The live progress line, written by its loop in real time: in place on a terminal, plain lines
otherwise."""

from __future__ import annotations

import asyncio
import io

import grpc

from loadgen.kinds import Rpc
from loadgen.progress import Progress, Snapshot
from loadgen.stats import Recorder


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def wait_for_writes(stream: io.StringIO, marker: str, count: int) -> None:
    """Polls (bounded) instead of sleeping a fixed time: a busy machine may delay the ticks."""
    for _ in range(500):
        if stream.getvalue().count(marker) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} progress lines after 5 s: {stream.getvalue()!r}")


async def test_plain_lines_when_not_a_terminal() -> None:
    recorder = Recorder()
    stream = io.StringIO()
    progress = Progress(recorder, lambda: Snapshot(1.0, 5, 0, 0), stream, interval=0.1)
    progress.start()
    recorder.record(Rpc.ME, grpc.StatusCode.OK, 0.002, expected=True)
    await wait_for_writes(stream, "\n", 2)
    await progress.stop()
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("[") for line in lines)
    assert "\r" not in stream.getvalue()


async def test_rewritten_in_place_on_a_terminal() -> None:
    stream = Terminal()
    progress = Progress(Recorder(), lambda: Snapshot(1.0, 5, 0, 0), stream, interval=60, tty_interval=0.05)
    progress.start()
    await wait_for_writes(stream, "\r", 2)
    await progress.stop()
    text = stream.getvalue()
    assert text.count("\r\x1b[2K") >= 2
    assert text.endswith("\n")
    assert text.count("\n") == 1
