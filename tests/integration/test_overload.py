"""Out of capacity answers RESOURCE_EXHAUSTED at once; a brute-force flood is throttled, not queued.

The flood runs against a real userd process at the production bcrypt cost (12, ~0.25 s of a core per
check): 200 concurrent wrong-password logins against one account are all answered within 10 s, a
login of another account made meanwhile succeeds within 2 s (or a few checks at the pace one
unhurried login took in the same run), and Me stays under 250 ms throughout."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import grpc
from grpcdemo.faults import FaultState, LatencyFault, MethodFilter
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from tests.support.observability_echo import Scrape, http_get
from tests.support.processes import free_port, service_process, wait_serving
from tests.support.services import TEST_JWT_SECRET, Stack, bearer, running_stack

FLOOD = 200


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def login_results(metrics_port: int) -> dict[str, float]:
    _, _, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    scrape = Scrape(body.decode())
    return {
        labels["result"]: scrape.value("userd_service_login_handler_total", **labels)
        for labels in scrape.series("userd_service_login_handler_total")
    }


async def test_a_brute_force_flood_is_throttled_while_others_log_in_and_me_stays_fast(tmp_path: Path) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
        "BCRYPT_ROUNDS": "12",
    }
    with service_process("userd", env, tmp_path / "userd.log"):
        await asyncio.to_thread(wait_serving, grpc_port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            users = user_pb2_grpc.UserServiceStub(channel)
            for email in ("victim@example.com", "bystander@example.com"):
                await users.Register(
                    user_pb2.RegisterRequest(email=email, password="correct horse", name="U")
                )
            # One unhurried login: what a bcrypt check costs on this machine right now (other tests
            # may share its cores), the baseline the bystander's login is held to below.
            quiet_started = time.monotonic()
            token = (
                await users.Login(
                    user_pb2.LoginRequest(email="bystander@example.com", password="correct horse")
                )
            ).access_token
            quiet_login = time.monotonic() - quiet_started
            before = await asyncio.to_thread(login_results, metrics_port)

            me_latencies: list[float] = []
            flooding = asyncio.Event()

            async def watch_me() -> None:
                while not flooding.is_set():
                    started = time.monotonic()
                    await users.Me(user_pb2.MeRequest(), metadata=bearer(token), timeout=5)
                    me_latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)

            async def guess(n: int) -> grpc.StatusCode:
                request = user_pb2.LoginRequest(email="victim@example.com", password=f"guess-{n:04d}")
                return await code_of(users.Login(request, timeout=30))

            async def bystander_login() -> float:
                await asyncio.sleep(0.2)  # the flood is in flight by now
                started = time.monotonic()
                request = user_pb2.LoginRequest(email="bystander@example.com", password="correct horse")
                assert (await users.Login(request, timeout=30)).access_token
                return time.monotonic() - started

            watcher = asyncio.create_task(watch_me())
            started = time.monotonic()
            codes, bystander = await asyncio.gather(
                asyncio.gather(*(guess(n) for n in range(FLOOD))), bystander_login()
            )
            flood_took = time.monotonic() - started
            flooding.set()
            await watcher
            after = await asyncio.to_thread(login_results, metrics_port)

    print(
        f"\nflood: {FLOOD} wrong-password logins answered in {flood_took:.2f}s; bystander login "
        f"{bystander:.2f}s; Me max {max(me_latencies) * 1000:.0f} ms over {len(me_latencies)} calls"
    )
    assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}
    assert flood_took < 10
    # Not queued behind the flood (that would be ~100 checks, ~25 s): the throttle lets 5 of its
    # guesses through, so the bystander waits for a few checks at most. 2 s on a quiet machine; the
    # same few checks at the baseline's pace when other tests share the cores.
    assert bystander < max(2.0, 8 * quiet_login), (bystander, quiet_login)
    assert max(me_latencies) < 0.25
    gained = {result: after[result] - before.get(result, 0) for result in after}
    # At most LOGIN_THROTTLE_FAILURES (5) guesses cost a bcrypt check; the rest were refused free.
    assert gained["invalid_password"] == 5
    assert gained["throttled"] == FLOOD - 5
    assert gained["success"] == 1


async def test_bcrypt_work_beyond_its_queue_is_resource_exhausted_at_once(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/u.db"
    # The production cost, so that a check lasts (~0.25 s) while the others arrive.
    extra = {"BCRYPT_MAX_CONCURRENT": "1", "BCRYPT_MAX_WAITING": "3", "BCRYPT_ROUNDS": "12"}
    async with running_stack(db, f"sqlite+aiosqlite:///{tmp_path}/o.db", userd_extra=extra) as stack:
        # Unknown accounts, each a different email: the throttle has nothing to refuse, every login
        # costs a (decoy) bcrypt check, and only 1 running + 3 waiting fit.
        requests = [
            user_pb2.LoginRequest(email=f"{uuid.uuid4().hex}@example.com", password="correct horse")
            for _ in range(30)
        ]
        started = time.monotonic()
        codes = await asyncio.gather(*(code_of(stack.users.Login(r, timeout=30)) for r in requests))
        took = time.monotonic() - started
        counts = {code: codes.count(code) for code in set(codes)}
        assert counts == {grpc.StatusCode.UNAUTHENTICATED: 4, grpc.StatusCode.RESOURCE_EXHAUSTED: 26}
        assert took < 5
        labels = {"grpc_type": "unary", "grpc_service": "user.v1.UserService", "grpc_method": "Login"}
        exhausted = stack.userd.registry.get_sample_value(
            "grpc_server_handled_total", {**labels, "grpc_code": "ResourceExhausted"}
        )
        assert exhausted == 26
        assert (
            stack.userd.registry.get_sample_value(
                "userd_service_login_handler_total", {"result": "overloaded"}
            )
            == 26
        )


async def test_calls_past_the_concurrency_limit_are_resource_exhausted_and_counted(
    tmp_path: Path,
) -> None:
    async with running_stack(
        f"sqlite+aiosqlite:///{tmp_path}/u.db",
        f"sqlite+aiosqlite:///{tmp_path}/o.db",
        userd_extra={"GRPC_MAX_CONCURRENT_RPCS": "4"},
    ) as stack:
        stack.userd.faults.set(FaultState(latency=LatencyFault(500, 500, MethodFilter(frozenset({"Me"})))))
        _, token = await register_and_login(stack)
        codes = await asyncio.gather(
            *(
                code_of(stack.users.Me(user_pb2.MeRequest(), metadata=bearer(token), timeout=10))
                for _ in range(10)
            )
        )
        assert codes.count(grpc.StatusCode.OK) == 4
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 6
        labels = {"grpc_type": "unary", "grpc_service": "user.v1.UserService", "grpc_method": "Me"}
        value = stack.userd.registry.get_sample_value
        assert value("grpc_server_handled_total", {**labels, "grpc_code": "ResourceExhausted"}) == 6
        # Health checking is never refused for capacity: orchestrators keep seeing the process.
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_pb2_grpc.HealthStub(stack.users_channel)
        checks = await asyncio.gather(
            *(stack.users.Me(user_pb2.MeRequest(), metadata=bearer(token), timeout=10) for _ in range(4)),
            *(health.Check(health_pb2.HealthCheckRequest(), timeout=5) for _ in range(4)),
            return_exceptions=True,
        )
        assert all(isinstance(reply, health_pb2.HealthCheckResponse) for reply in checks[4:])


async def register_and_login(stack: Stack) -> tuple[str, str]:
    # Registered before the latency fault is in the way of Login: the fault targets Me only.
    return await stack.register_and_login(f"limit-{uuid.uuid4().hex[:8]}@example.com")
