"""The user pool against a fake UserService: registration once, reuse from the file, token reuse and
refresh on expiry, recovery when userd forgot the accounts."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpcdemo.genproto.user.v1 import user_pb2

from loadgen.kinds import Rpc
from loadgen.pool import Account, SessionUnavailable, SetupError, UserPool, load_accounts, save_accounts

TTL = 900


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeUsers:
    """Just enough of UserService: accounts by email, tokens that expire TTL seconds after login."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.accounts: dict[str, str] = {}
        self.logins = 0
        self.registrations = 0
        self.unavailable = False

    async def Register(self, request: user_pb2.RegisterRequest, **options: Any) -> Any:
        await asyncio.sleep(0)
        if request.email in self.accounts:
            raise rpc_error(grpc.StatusCode.ALREADY_EXISTS)
        self.registrations += 1
        self.accounts[request.email] = request.password
        return user_pb2.RegisterResponse()

    async def Login(self, request: user_pb2.LoginRequest, **options: Any) -> Any:
        # A few turns of the loop "on the wire", so concurrent callers overlap with it.
        for _ in range(5):
            await asyncio.sleep(0)
        if self.unavailable:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE)
        if self.accounts.get(request.email) != request.password:
            raise rpc_error(grpc.StatusCode.UNAUTHENTICATED)
        self.logins += 1
        response = user_pb2.LoginResponse(access_token=f"token-{self.logins}")
        response.expires_at.seconds = int(self.clock.now) + TTL
        return response


def make_pool(users: FakeUsers, clock: Clock, observed: list[Any] | None = None) -> UserPool:
    def observe(rpc: Rpc, code: grpc.StatusCode, seconds: float) -> None:
        if observed is not None:
            observed.append((rpc, code))

    return UserPool(users, timeout=5, clock=clock, observe=observe)  # type: ignore[arg-type]


async def test_first_run_registers_second_run_reuses_the_file(tmp_path: Path) -> None:
    clock = Clock()
    users = FakeUsers(clock)
    path = tmp_path / "pool" / "users.json"
    first = await make_pool(users, clock).prepare(6, path)
    assert (first.registered, first.logged_in, first.replaced) == (6, 6, 0)
    assert users.registrations == 6
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = load_accounts(path)
    assert len(stored) == 6
    assert len({a.email for a in stored}) == 6

    pool = make_pool(users, clock)
    second = await pool.prepare(6, path)
    assert (second.registered, second.logged_in) == (0, 6)
    assert users.registrations == 6
    assert pool.accounts == stored


async def test_growing_and_shrinking_the_pool(tmp_path: Path) -> None:
    clock = Clock()
    users = FakeUsers(clock)
    path = tmp_path / "users.json"
    await make_pool(users, clock).prepare(2, path)
    grown = await make_pool(users, clock).prepare(4, path)
    assert grown.registered == 2
    assert len(load_accounts(path)) == 4
    shrunk_pool = make_pool(users, clock)
    shrunk = await shrunk_pool.prepare(3, path)
    assert shrunk.registered == 0
    assert len(shrunk_pool) == 3
    # Accounts beyond the current size stay in the file for later, bigger runs.
    assert len(load_accounts(path)) == 4


async def test_accounts_userd_forgot_are_registered_again_or_replaced(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "users.json"
    save_accounts(
        path, [Account("a@example.com", "password-a", "A"), Account("b@example.com", "password-b", "B")]
    )
    users = FakeUsers(clock)
    # b's email now belongs to someone else with another password.
    users.accounts["b@example.com"] = "not-ours"
    pool = make_pool(users, clock)
    report = await pool.prepare(2, path)
    assert (report.registered, report.replaced, report.logged_in) == (2, 1, 2)
    assert pool.accounts[0].email == "a@example.com"
    assert pool.accounts[1].email != "b@example.com"
    assert load_accounts(path) == pool.accounts


async def test_token_reused_until_close_to_expiry_then_refreshed(tmp_path: Path) -> None:
    clock = Clock()
    users = FakeUsers(clock)
    observed: list[Any] = []
    pool = make_pool(users, clock, observed)
    await pool.prepare(1, tmp_path / "users.json")
    logins = users.logins
    first = await pool.token(0)
    clock.now += TTL - 31  # the margin is min(30 s, a tenth of the lifetime)
    assert await pool.token(0) == first
    assert users.logins == logins
    clock.now += 2
    refreshed = await pool.token(0)
    assert refreshed != first
    assert users.logins == logins + 1
    # The refresh is traffic: it is reported as a Login.
    assert observed == [(Rpc.LOGIN, grpc.StatusCode.OK)]
    assert await pool.token(0) == refreshed


async def test_concurrent_callers_share_one_refresh(tmp_path: Path) -> None:
    clock = Clock()
    users = FakeUsers(clock)
    pool = make_pool(users, clock)
    await pool.prepare(1, tmp_path / "users.json")
    logins = users.logins
    clock.now += TTL
    tokens = await asyncio.gather(*(pool.token(0) for _ in range(20)))
    assert len(set(tokens)) == 1
    assert users.logins == logins + 1


async def test_failed_refresh_is_reported_and_raises(tmp_path: Path) -> None:
    clock = Clock()
    users = FakeUsers(clock)
    observed: list[Any] = []
    pool = make_pool(users, clock, observed)
    await pool.prepare(1, tmp_path / "users.json")
    clock.now += TTL
    users.unavailable = True
    with pytest.raises(SessionUnavailable, match="UNAVAILABLE"):
        await pool.token(0)
    assert observed == [(Rpc.LOGIN, grpc.StatusCode.UNAVAILABLE)]


async def test_login_action_replaces_the_token(tmp_path: Path) -> None:
    clock = Clock()
    users = FakeUsers(clock)
    pool = make_pool(users, clock)
    await pool.prepare(1, tmp_path / "users.json")
    before = await pool.token(0)
    assert await pool.login(0) == grpc.StatusCode.OK
    assert await pool.token(0) != before


async def test_setup_fails_clearly_when_userd_is_down(tmp_path: Path) -> None:
    clock = Clock()
    users = FakeUsers(clock)
    users.unavailable = True
    with pytest.raises(SetupError, match="UNAVAILABLE"):
        await make_pool(users, clock).prepare(2, tmp_path / "users.json")


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps({"version": 99, "users": []}), json.dumps({"version": 1})]
)
async def test_malformed_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(SetupError, match="delete it"):
        load_accounts(path)
