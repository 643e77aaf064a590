"""The generator's users: registered once, kept in a git-ignored file so restarts reuse them, and
logged in with tokens reused until shortly before they expire.

bcrypt makes every Register and Login cost ~250 ms of userd CPU at the default cost, so they are
done once at start-up (a few at a time) and then only when a token is about to expire.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from loadgen.kinds import Rpc

log = logging.getLogger(__name__)

FILE_VERSION: Final = 1
# userd checks BCRYPT_MAX_CONCURRENT passwords at once (its CPU count, 2 here); more at once from one
# client only queue there. Setting up a pool of hundreds (loadgen/accounts.py) 4 at a time kept Login's
# p95 above 500 ms for minutes on 2 cores, enough for GRPCLatencyP95High.
SETUP_CONCURRENCY: Final = 2
# Refresh this long before expiry so a token never expires between the check and the server.
MAX_REFRESH_MARGIN_SECONDS: Final = 30.0

CallObserver = Callable[[Rpc, grpc.StatusCode, float], None]
Clock = Callable[[], float]


class SetupError(RuntimeError):
    """The run cannot start (user pool, metrics port); the message says why."""


class SessionUnavailable(RuntimeError):
    """No valid token for a user: refreshing it failed (the failed Login was recorded)."""


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    name: str

    @classmethod
    def new(cls) -> Account:
        # Not from the seeded RNG: reruns with the same seed against the same database must not
        # collide with the accounts of earlier runs.
        tag = secrets.token_hex(6)
        return cls(f"loadgen-{tag}@example.com", secrets.token_urlsafe(18), f"Load Generator {tag}")


@dataclass
class Session:
    token: str
    refresh_at: float


def load_accounts(path: Path) -> list[Account]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        raise SetupError(
            f"cannot read the user pool file {path}: {error}; delete it to start afresh"
        ) from None
    try:
        if data.get("version") != FILE_VERSION:
            raise ValueError(f"unsupported version {data.get('version')!r}")
        return [Account(str(u["email"]), str(u["password"]), str(u["name"])) for u in data["users"]]
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise SetupError(f"user pool file {path} is malformed ({error}); delete it to start afresh") from None


def save_accounts(path: Path, accounts: Iterable[Account]) -> None:
    """Atomically, readable by the owner only: the file holds passwords (of throwaway accounts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"version": FILE_VERSION, "users": [asdict(a) for a in accounts]}, indent=2)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(payload + "\n")
    os.replace(temporary, path)


@dataclass
class SetupReport:
    registered: int = 0
    logged_in: int = 0
    replaced: int = 0


class UserPool:
    def __init__(
        self,
        users: user_pb2_grpc.UserServiceStub,
        *,
        timeout: float,
        clock: Clock = time.time,
        observe: CallObserver | None = None,
    ) -> None:
        self._users = users
        self._timeout = timeout
        self._clock = clock
        self._observe = observe
        self.accounts: list[Account] = []
        self._sessions: dict[int, Session] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self.accounts)

    async def prepare(self, size: int, path: Path) -> SetupReport:
        """Loads the file, registers what is missing, logs every user in, saves the file."""
        if size < 1:
            raise SetupError("the pool needs at least one user")
        stored = load_accounts(path)
        report = SetupReport()
        accounts = stored[:size]
        while len(accounts) < size:
            accounts.append(Account.new())
        semaphore = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def ready(index: int) -> Account:
            async with semaphore:
                return await self._ensure_account(accounts[index], index, report)

        self.accounts = list(await asyncio.gather(*(ready(i) for i in range(size))))
        if self.accounts != stored[:size]:
            save_accounts(path, [*self.accounts, *stored[size:]])
        return report

    async def _ensure_account(self, account: Account, index: int, report: SetupReport) -> Account:
        """Log in; an account unknown to userd (a new one, or the database was reset) is registered;
        one whose email is taken with another password is replaced by a fresh account."""
        for _ in range(3):
            code = await self._login(account, index, setup=True)
            if code == grpc.StatusCode.OK:
                report.logged_in += 1
                return account
            if code != grpc.StatusCode.UNAUTHENTICATED:
                raise SetupError(f"Login for the user pool failed with {code.name}; is userd running?")
            code = await self._register(account)
            if code == grpc.StatusCode.OK:
                report.registered += 1
            elif code == grpc.StatusCode.ALREADY_EXISTS:
                account = Account.new()
                report.replaced += 1
            else:
                raise SetupError(f"Register for the user pool failed with {code.name}")
        raise SetupError(f"could not log in or register {account.email}")

    async def _register(self, account: Account) -> grpc.StatusCode:
        request = user_pb2.RegisterRequest(email=account.email, password=account.password, name=account.name)
        try:
            await self._users.Register(request, timeout=self._setup_timeout())
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    def _setup_timeout(self) -> float:
        # A few bcrypt hashes queue up behind each other at start-up.
        return max(self._timeout, 30.0)

    async def _login(self, account: Account, index: int, *, setup: bool = False) -> grpc.StatusCode:
        request = user_pb2.LoginRequest(email=account.email, password=account.password)
        try:
            response = await self._users.Login(
                request, timeout=self._setup_timeout() if setup else self._timeout
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
        now = self._clock()
        expires_at = response.expires_at.seconds + response.expires_at.nanos / 1e9
        margin = min(MAX_REFRESH_MARGIN_SECONDS, max(0.0, expires_at - now) / 10)
        self._sessions[index] = Session(response.access_token, expires_at - margin)
        return grpc.StatusCode.OK

    async def login(self, index: int, *, observed: bool = False) -> grpc.StatusCode:
        """A user logs in again (part of the traffic mix); a success replaces the user's token.
        `observed`: recorded here, as a token refresh is, for a login that is not an arrival of its
        own (the right password after a typo)."""
        started = time.perf_counter()
        code = await self._login(self.accounts[index], index)
        if observed and self._observe is not None:
            self._observe(Rpc.LOGIN, code, time.perf_counter() - started)
        return code

    async def token(self, index: int) -> str:
        """A valid token for user `index`, logging in first when the current one is about to expire."""
        session = self._sessions.get(index)
        if session is not None and self._clock() < session.refresh_at:
            return session.token
        lock = self._locks.setdefault(index, asyncio.Lock())
        async with lock:
            session = self._sessions.get(index)
            if session is not None and self._clock() < session.refresh_at:
                return session.token
            started = time.perf_counter()
            code = await self._login(self.accounts[index], index)
            if self._observe is not None:
                self._observe(Rpc.LOGIN, code, time.perf_counter() - started)
            if code != grpc.StatusCode.OK:
                raise SessionUnavailable(f"token refresh failed with {code.name}")
            return self._sessions[index].token


__all__ = [
    "Account",
    "SessionUnavailable",
    "SetupError",
    "SetupReport",
    "UserPool",
    "load_accounts",
    "save_accounts",
]
