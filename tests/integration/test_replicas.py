"""Several userd replicas behind one orderd, as real processes on PostgreSQL: orderd's USERD_ADDR names
both (gRPC's `ipv4:` list), its channel balances round robin, and the servers recycle connections.

- A steady run puts 35-65% of orderd's authentication calls on each replica, read from each
  replica's own grpc_server_handled_total; no call fails while connections are recycled every 2 s.
- SIGKILL of one replica during a run fails at most 1% of calls, and none after the first second.
- The killed replica, started again, gets calls within a connection age.
- A USERD_ADDR gRPC cannot use stops orderd at start-up with a message naming the variable."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpcdemo.genproto.order.v1 import order_pb2, order_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from tests.support.databases import postgres_database
from tests.support.observability_echo import Scrape, http_get
from tests.support.processes import ROOT, free_port, service_process, wait_serving
from tests.support.services import TEST_JWT_SECRET

CONNECTION_AGE_SECONDS = 2.0
CONCURRENCY = 8


@dataclass
class Replica:
    grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def me_calls(self) -> float:
        _, _, body = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        scrape = Scrape(body.decode())
        return sum(
            scrape.value("grpc_server_handled_total", **labels)
            for labels in scrape.series("grpc_server_handled_total")
            if labels.get("grpc_method") == "Me"
        )


def userd_env(replica: Replica, database_url: str) -> dict[str, str]:
    return {
        "JWT_SECRET": TEST_JWT_SECRET,
        "BCRYPT_ROUNDS": "4",
        "GRPC_ADDR": replica.addr,
        "METRICS_ADDR": f"127.0.0.1:{replica.metrics_port}",
        "DATABASE_URL": database_url,
        "MIGRATE_ON_START": "false",
        "GRPC_MAX_CONNECTION_AGE_SECONDS": f"{CONNECTION_AGE_SECONDS:g}",
        "GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS": "1",
    }


def migrate(service: str, database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", service, "migrate"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "JWT_SECRET": TEST_JWT_SECRET},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Run:
    ok: int = 0
    failed: list[float] = field(default_factory=list)  # loop times of failed calls

    @property
    def total(self) -> int:
        return self.ok + len(self.failed)


async def drive(orders: order_pb2_grpc.OrderServiceStub, token: str, seconds: float) -> Run:
    """CONCURRENCY callers of ListOrders (each authenticated through userd.Me) for `seconds`."""
    run = Run()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    metadata = (("authorization", f"Bearer {token}"),)

    async def caller() -> None:
        while loop.time() < deadline:
            try:
                await orders.ListOrders(
                    order_pb2.ListOrdersRequest(page_size=1), metadata=metadata, timeout=5
                )
                run.ok += 1
            except grpc.aio.AioRpcError:
                run.failed.append(loop.time())

    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return run


@contextlib.contextmanager
def userd_replica(replica: Replica, database_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with service_process("userd", userd_env(replica, database_url), log) as proc:
        wait_serving(replica.grpc_port)
        yield proc


async def test_calls_spread_over_replicas_and_survive_a_killed_one(tmp_path: Path) -> None:
    a, b = Replica(), Replica()
    orderd_port, orderd_metrics = free_port(), free_port()
    async with postgres_database() as userd_db, postgres_database() as orderd_db:
        await asyncio.to_thread(migrate, "userd", userd_db)
        await asyncio.to_thread(migrate, "orderd", orderd_db)
        orderd_env = {
            "GRPC_ADDR": f"127.0.0.1:{orderd_port}",
            "METRICS_ADDR": f"127.0.0.1:{orderd_metrics}",
            "DATABASE_URL": orderd_db,
            "MIGRATE_ON_START": "false",
            "USERD_ADDR": f"ipv4:{a.addr},{b.addr}",
        }
        with (
            userd_replica(a, userd_db, tmp_path / "userd-a.log"),
            userd_replica(b, userd_db, tmp_path / "userd-b.log") as b_proc,
            service_process("orderd", orderd_env, tmp_path / "orderd.log"),
        ):
            await asyncio.to_thread(wait_serving, orderd_port)
            async with (
                grpc.aio.insecure_channel(a.addr) as user_channel,
                grpc.aio.insecure_channel(f"127.0.0.1:{orderd_port}") as order_channel,
            ):
                users = user_pb2_grpc.UserServiceStub(user_channel)
                await users.Register(
                    user_pb2.RegisterRequest(email="r@example.com", password="correct horse", name="R")
                )
                login = await users.Login(
                    user_pb2.LoginRequest(email="r@example.com", password="correct horse")
                )
                orders = order_pb2_grpc.OrderServiceStub(order_channel)

                # Steady: both replicas share the calls; connections recycle every 2 s meanwhile.
                before = (a.me_calls(), b.me_calls())
                steady = await drive(orders, login.access_token, 3 * CONNECTION_AGE_SECONDS + 2)
                on_a, on_b = a.me_calls() - before[0], b.me_calls() - before[1]
                share_a = on_a / (on_a + on_b)
                print(
                    f"\nsteady: {steady.total} calls, {len(steady.failed)} failed; replica a {on_a:.0f} "
                    f"({share_a:.0%}), b {on_b:.0f}"
                )
                assert steady.failed == [], "a call failed while connections were recycled"
                assert on_a + on_b >= steady.total
                assert 0.35 <= share_a <= 0.65

                # SIGKILL of replica b in the middle of a run.
                loop = asyncio.get_running_loop()
                running = asyncio.create_task(drive(orders, login.access_token, 6))
                await asyncio.sleep(2)
                killed_at = loop.time()
                b_proc.send_signal(signal.SIGKILL)
                b_proc.wait(timeout=5)
                during = await running
                late = [t - killed_at for t in during.failed if t - killed_at > 1.0]
                print(
                    f"kill -9 of replica b: {len(during.failed)} of {during.total} calls failed "
                    f"({len(during.failed) / during.total:.2%}), {len(late)} after the first second"
                )
                assert len(during.failed) <= 0.01 * during.total
                assert late == []

                # Started again, b gets calls within a connection age (plus the reconnect backoff).
                with userd_replica(b, userd_db, tmp_path / "userd-b2.log"):
                    restarted_at = time.monotonic()
                    back_on_b = b.me_calls()
                    after = await drive(orders, login.access_token, CONNECTION_AGE_SECONDS + 3)
                    gained = b.me_calls() - back_on_b
                    print(
                        f"restarted replica b: {gained:.0f} calls within {time.monotonic() - restarted_at:.1f}s"
                    )
                    assert after.failed == []
                    assert gained > 0


@pytest.mark.parametrize(
    "value",
    ["ipv4:127.0.0.1", "http://userd:50051", "dns:///", "userd:notaport", "ipv4:127.0.0.1:1,localhost:2"],
)
def test_an_unusable_userd_addr_stops_orderd_at_start_up(tmp_path: Path, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orderd"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "USERD_ADDR": value,
            "GRPC_ADDR": f"127.0.0.1:{free_port()}",
            "METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/o.db",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "USERD_ADDR" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
