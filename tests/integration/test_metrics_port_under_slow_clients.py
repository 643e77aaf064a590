"""The metrics port of a real service process while 400 clients hold connections open and send a
byte now and then (slowloris): a scrape still answers within 3 s, the process stays under 64
threads, and a request that trickles in is dropped once its time is up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.observability_echo import Scrape, http_get
from tests.support.processes import free_port, service_process, wait_serving
from tests.support.services import TEST_JWT_SECRET

SLOW_CLIENTS = 400


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


class Connected:
    """Counts slow clients that hold a connection; `all` is set once every one of them does."""

    def __init__(self, expected: int) -> None:
        self.count = 0
        self.expected = expected
        self.all = asyncio.Event()

    def one_more(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.all.set()


async def slow_client(port: int, stop: asyncio.Event, connected: Connected) -> None:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\n")
        await writer.drain()
        connected.one_more()
        while not stop.is_set():
            writer.write(b"X")
            await writer.drain()
            await asyncio.wait_for(stop.wait(), timeout=1)
    except (TimeoutError, OSError):
        pass
    finally:
        writer.close()


async def test_a_scrape_answers_while_400_slow_clients_hold_connections(tmp_path: Path) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
        "BCRYPT_ROUNDS": "4",
    }
    with service_process("userd", env, tmp_path / "userd.log") as proc:
        await asyncio.to_thread(wait_serving, grpc_port)
        baseline_threads = threads_of(proc.pid)
        stop = asyncio.Event()
        connected = Connected(SLOW_CLIENTS)
        clients = [
            asyncio.create_task(slow_client(metrics_port, stop, connected)) for _ in range(SLOW_CLIENTS)
        ]
        try:
            # Every client connected and sent its first line before the scrape.
            await asyncio.wait_for(connected.all.wait(), timeout=15)
            started = time.monotonic()
            status, _, body = await asyncio.to_thread(
                http_get, f"http://127.0.0.1:{metrics_port}/metrics", None, 3.0
            )
            took = time.monotonic() - started
            assert status == 200
            assert "userd_build_info" in Scrape(body.decode()).families
            assert took < 3.0, f"scrape took {took:.2f}s"
            threads = threads_of(proc.pid)
            assert threads < 64, f"{threads} threads (before the clients: {baseline_threads})"
            assert threads <= baseline_threads + 1
        finally:
            stop.set()
            await asyncio.gather(*clients)


async def test_a_request_that_trickles_in_is_dropped_when_its_time_is_up(tmp_path: Path) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
    }
    with service_process("userd", env, tmp_path / "userd.log"):
        await asyncio.to_thread(wait_serving, grpc_port)
        reader, writer = await asyncio.open_connection("127.0.0.1", metrics_port)
        started = time.monotonic()
        writer.write(b"GET /metrics HTTP/1.1\r\n")
        closed_after = None
        for _ in range(20):  # a byte a second, never the blank line that ends the head
            try:
                writer.write(b"X")
                await writer.drain()
                if await asyncio.wait_for(reader.read(1), timeout=1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        writer.close()
        assert closed_after is not None, "the server kept a trickling request for 20 s"
        assert 4.0 <= closed_after < 8.0
