"""What each action sends. Every action makes exactly one RPC (a token refresh aside) and returns its
status; all its random choices come from the arrival's own seeded RNG."""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc
from grpcdemo.genproto.order.v1 import order_pb2, order_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from loadgen.accounts import corrects_typo, guessed_account, typo_account
from loadgen.kinds import Action, Rpc, expected_code
from loadgen.pool import Account, UserPool

# A small catalogue with fixed prices, so baskets look like shopping rather than noise.
CATALOGUE: Final = tuple((f"SKU-{n:04d}", 199 + 150 * n) for n in range(1, 41))
Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def garbage_token() -> str:
    return "garbage." + secrets.token_urlsafe(24)


def basket(rng: random.Random) -> tuple[order_pb2.OrderItem, ...]:
    picked = rng.sample(CATALOGUE, rng.randint(1, 4))
    return tuple(
        order_pb2.OrderItem(sku=sku, quantity=rng.randint(1, 5), unit_price_cents=price)
        for sku, price in picked
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    rpc: Rpc
    code: grpc.StatusCode
    expected: bool


@dataclass(frozen=True, slots=True)
class Creation:
    user: int
    request_id: str
    items: tuple[order_pb2.OrderItem, ...]
    order_id: str


class OrderMemory:
    """Order ids seen per user (what GetOrder asks for) and recent creations (what a retry resends),
    both bounded. Also counts what idempotency should guarantee: a retry returns the same order."""

    def __init__(self, per_user: int = 64, recent: int = 256) -> None:
        self._per_user = per_user
        self._orders: dict[int, deque[str]] = {}
        self._recent: deque[Creation] = deque(maxlen=recent)
        self.created = 0
        self.replays_matched = 0
        self.replays_mismatched = 0

    def remember(self, user: int, order_id: str) -> None:
        known = self._orders.setdefault(user, deque(maxlen=self._per_user))
        if order_id not in known:
            known.append(order_id)

    def record_creation(self, creation: Creation) -> None:
        self.created += 1
        self._recent.append(creation)
        self.remember(creation.user, creation.order_id)

    def record_replay(self, original: Creation, order_id: str) -> None:
        if order_id == original.order_id:
            self.replays_matched += 1
        else:
            self.replays_mismatched += 1

    def pick_order(self, user: int, users: int, rng: random.Random) -> tuple[int, str] | None:
        """An order of `user`, else of the next user that has one."""
        for step in range(users):
            candidate = (user + step) % users
            known = self._orders.get(candidate)
            if known:
                return candidate, rng.choice(known)
        return None

    def pick_creation(self, rng: random.Random) -> Creation | None:
        return rng.choice(self._recent) if self._recent else None


class Actions:
    def __init__(
        self,
        users: user_pb2_grpc.UserServiceStub,
        orders: order_pb2_grpc.OrderServiceStub,
        pool: UserPool,
        memory: OrderMemory,
        *,
        timeout: float,
    ) -> None:
        self._users = users
        self._orders = orders
        self._pool = pool
        self._memory = memory
        self._timeout = timeout
        self._corrections: set[asyncio.Task[grpc.StatusCode]] = set()
        self._handlers: dict[Action, Callable[[random.Random], Awaitable[Outcome]]] = {
            Action.ME: self._me,
            Action.CREATE_ORDER: self._create_order,
            Action.RETRY_CREATE_ORDER: self._retry_create_order,
            Action.GET_ORDER: self._get_order,
            Action.LIST_ORDERS: self._list_orders,
            Action.LOGIN: self._login,
            Action.REGISTER: self._register,
            Action.LOGIN_WRONG_PASSWORD: self._login_wrong_password,
            Action.LOGIN_GUESS: self._login_guess,
            Action.LOGIN_UNKNOWN_EMAIL: self._login_unknown_email,
            Action.LOGIN_INVALID_EMAIL: self._login_invalid_email,
            Action.REGISTER_EXISTING: self._register_existing,
            Action.REGISTER_INVALID: self._register_invalid,
            Action.ME_GARBAGE_TOKEN: self._me_garbage_token,
            Action.ME_NO_TOKEN: self._me_no_token,
            Action.CREATE_ORDER_INVALID: self._create_order_invalid,
            Action.CREATE_ORDER_GARBAGE_TOKEN: self._create_order_garbage_token,
            Action.GET_ORDER_UNKNOWN: self._get_order_unknown,
            Action.LIST_ORDERS_GARBAGE_TOKEN: self._list_orders_garbage_token,
        }
        missing = set(Action) - set(self._handlers)
        if missing:
            raise AssertionError(f"actions without a handler: {sorted(missing)}")

    async def run(self, action: Action, rng: random.Random) -> Outcome:
        return await self._handlers[action](rng)

    async def prime_memory(self) -> None:
        """Learns the orders pool users already have (from earlier runs), so GetOrder has ids to ask
        for from the first second. Not part of the measured traffic."""
        for user in range(len(self._pool)):
            token = await self._pool.token(user)
            try:
                response = await self._orders.ListOrders(
                    order_pb2.ListOrdersRequest(page_size=20), metadata=bearer(token), timeout=self._timeout
                )
            except grpc.aio.AioRpcError:
                continue
            for order in response.orders:
                self._memory.remember(user, order.id)

    async def _call(
        self,
        action: Action,
        rpc: Rpc,
        call: Callable[..., Any],
        request: Any,
        metadata: Metadata | None = None,
    ) -> tuple[Outcome, Any]:
        try:
            response = await call(request, metadata=metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            return Outcome(rpc, code, code == expected_code(action)), None
        return Outcome(rpc, grpc.StatusCode.OK, expected_code(action) == grpc.StatusCode.OK), response

    def _user(self, rng: random.Random) -> int:
        return rng.randrange(len(self._pool))

    # -- normal traffic ------------------------------------------------------------------------

    async def _me(self, rng: random.Random) -> Outcome:
        token = await self._pool.token(self._user(rng))
        outcome, _ = await self._call(Action.ME, Rpc.ME, self._users.Me, user_pb2.MeRequest(), bearer(token))
        return outcome

    async def _create_order(self, rng: random.Random) -> Outcome:
        user = self._user(rng)
        items = basket(rng)
        token = await self._pool.token(user)
        request_id = str(uuid.uuid4())  # fresh on every run, unlike the seeded basket
        request = order_pb2.CreateOrderRequest(request_id=request_id, items=items)
        outcome, response = await self._call(
            Action.CREATE_ORDER, Rpc.CREATE_ORDER, self._orders.CreateOrder, request, bearer(token)
        )
        if response is not None:
            self._memory.record_creation(Creation(user, request_id, items, response.order.id))
        return outcome

    async def _retry_create_order(self, rng: random.Random) -> Outcome:
        original = self._memory.pick_creation(rng)
        if original is None:
            return await self._create_order(rng)
        token = await self._pool.token(original.user)
        request = order_pb2.CreateOrderRequest(request_id=original.request_id, items=original.items)
        outcome, response = await self._call(
            Action.RETRY_CREATE_ORDER, Rpc.CREATE_ORDER, self._orders.CreateOrder, request, bearer(token)
        )
        if response is not None:
            self._memory.record_replay(original, response.order.id)
        return outcome

    async def _get_order(self, rng: random.Random) -> Outcome:
        picked = self._memory.pick_order(self._user(rng), len(self._pool), rng)
        if picked is None:
            # Nothing created yet (fresh database, first moments of a run): create one instead.
            return await self._create_order(rng)
        user, order_id = picked
        token = await self._pool.token(user)
        outcome, _ = await self._call(
            Action.GET_ORDER,
            Rpc.GET_ORDER,
            self._orders.GetOrder,
            order_pb2.GetOrderRequest(order_id=order_id),
            bearer(token),
        )
        return outcome

    async def _list_orders(self, rng: random.Random) -> Outcome:
        user = self._user(rng)
        token = await self._pool.token(user)
        request = order_pb2.ListOrdersRequest(page_size=rng.randint(5, 20))
        outcome, response = await self._call(
            Action.LIST_ORDERS, Rpc.LIST_ORDERS, self._orders.ListOrders, request, bearer(token)
        )
        if response is not None:
            for order in response.orders:
                self._memory.remember(user, order.id)
        return outcome

    async def _login(self, rng: random.Random) -> Outcome:
        code = await self._pool.login(self._user(rng))
        return Outcome(Rpc.LOGIN, code, code == expected_code(Action.LOGIN))

    async def _register(self, rng: random.Random) -> Outcome:
        # A sign-up that does not join the pool: the pool stays the size asked for.
        account = Account.new()
        request = user_pb2.RegisterRequest(email=account.email, password=account.password, name=account.name)
        outcome, _ = await self._call(Action.REGISTER, Rpc.REGISTER, self._users.Register, request)
        return outcome

    # -- caller errors -------------------------------------------------------------------------

    async def _login_wrong_password(self, rng: random.Random) -> Outcome:
        user = typo_account(rng, len(self._pool))
        target = self._pool.accounts[user]
        request = user_pb2.LoginRequest(email=target.email, password=f"typo-{rng.getrandbits(32):08x}")
        outcome, _ = await self._call(Action.LOGIN_WRONG_PASSWORD, Rpc.LOGIN, self._users.Login, request)
        if corrects_typo(rng):
            # The person tries again with the right password: its own Login, recorded as the pool's
            # logins are (a refusal of the right password is an unexpected answer).
            correction = asyncio.create_task(self._pool.login(user, observed=True))
            self._corrections.add(correction)
            correction.add_done_callback(self._corrections.discard)
        return outcome

    async def _login_guess(self, rng: random.Random) -> Outcome:
        target = self._pool.accounts[guessed_account(rng, len(self._pool))]
        request = user_pb2.LoginRequest(email=target.email, password=f"guess-{rng.getrandbits(32):08x}")
        outcome, _ = await self._call(Action.LOGIN_GUESS, Rpc.LOGIN, self._users.Login, request)
        return outcome

    async def settle(self) -> None:
        """Waits for the corrections still in flight (the end of a run)."""
        await asyncio.gather(*self._corrections, return_exceptions=True)

    async def _login_unknown_email(self, rng: random.Random) -> Outcome:
        request = user_pb2.LoginRequest(
            email=f"nobody-{secrets.token_hex(6)}@example.com", password="whatever-123"
        )
        outcome, _ = await self._call(Action.LOGIN_UNKNOWN_EMAIL, Rpc.LOGIN, self._users.Login, request)
        return outcome

    async def _login_invalid_email(self, rng: random.Random) -> Outcome:
        email = rng.choice(["not-an-email", "", "two@@example.com", "spaces in@example.com"])
        request = user_pb2.LoginRequest(email=email, password="whatever-123")
        outcome, _ = await self._call(Action.LOGIN_INVALID_EMAIL, Rpc.LOGIN, self._users.Login, request)
        return outcome

    async def _register_existing(self, rng: random.Random) -> Outcome:
        existing = self._pool.accounts[self._user(rng)]
        request = user_pb2.RegisterRequest(
            email=existing.email, password=secrets.token_urlsafe(12), name="Copycat"
        )
        outcome, _ = await self._call(Action.REGISTER_EXISTING, Rpc.REGISTER, self._users.Register, request)
        return outcome

    async def _register_invalid(self, rng: random.Random) -> Outcome:
        email = f"invalid-{secrets.token_hex(4)}@example.com"
        request = rng.choice(
            [
                user_pb2.RegisterRequest(email="not-an-email", password="long-enough-1", name="Bad Email"),
                user_pb2.RegisterRequest(email=email, password="short", name="Short Password"),
                user_pb2.RegisterRequest(email=email, password="long-enough-1", name=""),
                user_pb2.RegisterRequest(email=email, password="long-enough-1", name="x" * 101),
            ]
        )
        outcome, _ = await self._call(Action.REGISTER_INVALID, Rpc.REGISTER, self._users.Register, request)
        return outcome

    async def _me_garbage_token(self, rng: random.Random) -> Outcome:
        outcome, _ = await self._call(
            Action.ME_GARBAGE_TOKEN, Rpc.ME, self._users.Me, user_pb2.MeRequest(), bearer(garbage_token())
        )
        return outcome

    async def _me_no_token(self, rng: random.Random) -> Outcome:
        outcome, _ = await self._call(Action.ME_NO_TOKEN, Rpc.ME, self._users.Me, user_pb2.MeRequest())
        return outcome

    async def _create_order_invalid(self, rng: random.Random) -> Outcome:
        user = self._user(rng)
        token = await self._pool.token(user)
        sku, price = rng.choice(CATALOGUE)
        item = order_pb2.OrderItem(sku=sku, quantity=1, unit_price_cents=price)
        request_id = str(uuid.uuid4())
        request = rng.choice(
            [
                order_pb2.CreateOrderRequest(request_id=request_id, items=[]),
                order_pb2.CreateOrderRequest(
                    request_id=request_id, items=[order_pb2.OrderItem(sku=sku, quantity=0)]
                ),
                order_pb2.CreateOrderRequest(
                    request_id=request_id,
                    items=[order_pb2.OrderItem(sku=sku, quantity=1, unit_price_cents=-5)],
                ),
                order_pb2.CreateOrderRequest(
                    request_id=request_id, items=[order_pb2.OrderItem(sku="bad sku!", quantity=1)]
                ),
                order_pb2.CreateOrderRequest(request_id=request_id, items=[item] * 101),
                order_pb2.CreateOrderRequest(request_id="", items=[item]),
                order_pb2.CreateOrderRequest(request_id="r" * 65, items=[item]),
            ]
        )
        outcome, _ = await self._call(
            Action.CREATE_ORDER_INVALID, Rpc.CREATE_ORDER, self._orders.CreateOrder, request, bearer(token)
        )
        return outcome

    async def _create_order_garbage_token(self, rng: random.Random) -> Outcome:
        request = order_pb2.CreateOrderRequest(request_id=str(uuid.uuid4()), items=basket(rng))
        outcome, _ = await self._call(
            Action.CREATE_ORDER_GARBAGE_TOKEN,
            Rpc.CREATE_ORDER,
            self._orders.CreateOrder,
            request,
            bearer(garbage_token()),
        )
        return outcome

    async def _get_order_unknown(self, rng: random.Random) -> Outcome:
        token = await self._pool.token(self._user(rng))
        request = order_pb2.GetOrderRequest(order_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        outcome, _ = await self._call(
            Action.GET_ORDER_UNKNOWN, Rpc.GET_ORDER, self._orders.GetOrder, request, bearer(token)
        )
        return outcome

    async def _list_orders_garbage_token(self, rng: random.Random) -> Outcome:
        outcome, _ = await self._call(
            Action.LIST_ORDERS_GARBAGE_TOKEN,
            Rpc.LIST_ORDERS,
            self._orders.ListOrders,
            order_pb2.ListOrdersRequest(),
            bearer(garbage_token()),
        )
        return outcome
