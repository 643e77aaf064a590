"""Both services over real gRPC, on SQLite and PostgreSQL: the whole flow and every error status."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpcdemo.genproto.order.v1 import order_pb2
from grpcdemo.genproto.user.v1 import user_pb2
from userd.domain.tokens import TokenService, TokenSettings

from tests.support.services import TEST_JWT_SECRET, Stack, bearer


def item(sku: str = "SKU-1", quantity: int = 2, price: int = 1250) -> order_pb2.OrderItem:
    return order_pb2.OrderItem(sku=sku, quantity=quantity, unit_price_cents=price)


async def expect_status(call: object, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details() or ""


async def test_register_login_me_create_get_list(stack: Stack) -> None:
    user_id, token = await stack.register_and_login("  Alice@Example.COM ")
    me = await stack.users.Me(user_pb2.MeRequest(), metadata=bearer(token))
    assert me.user.id == user_id
    assert me.user.email == "alice@example.com"
    assert me.user.created_at.seconds > 0

    created = await stack.orders.CreateOrder(
        order_pb2.CreateOrderRequest(
            request_id="r-1", items=[item(quantity=2, price=1250), item("SKU-2", 1, 99)]
        ),
        metadata=bearer(token),
    )
    order = created.order
    assert order.user_id == user_id
    assert order.total_cents == 2 * 1250 + 99
    assert order.status == order_pb2.ORDER_STATUS_CREATED
    assert [i.sku for i in order.items] == ["SKU-1", "SKU-2"]

    fetched = await stack.orders.GetOrder(
        order_pb2.GetOrderRequest(order_id=order.id), metadata=bearer(token)
    )
    assert fetched.order == order

    listed = await stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(token))
    assert [o.id for o in listed.orders] == [order.id]
    assert listed.next_page_token == ""


async def test_list_pages_newest_first(stack: Stack) -> None:
    _, token = await stack.register_and_login("pager@example.com")
    ids = []
    for n in range(5):
        response = await stack.orders.CreateOrder(
            order_pb2.CreateOrderRequest(request_id=f"p-{n}", items=[item()]), metadata=bearer(token)
        )
        ids.append(response.order.id)
    seen: list[str] = []
    token_for_page = ""
    for _ in range(3):
        page = await stack.orders.ListOrders(
            order_pb2.ListOrdersRequest(page_size=2, page_token=token_for_page), metadata=bearer(token)
        )
        seen += [o.id for o in page.orders]
        token_for_page = page.next_page_token
        if not token_for_page:
            break
    assert seen == list(reversed(ids))
    assert token_for_page == ""


async def test_register_errors(stack: Stack) -> None:
    await stack.register_and_login("bob@example.com")
    details = await expect_status(
        stack.users.Register(
            user_pb2.RegisterRequest(email="BOB@example.com", password="another pw", name="B")
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert "already exists" in details
    for request, needle in [
        (user_pb2.RegisterRequest(email="not-an-email", password="long enough", name="x"), "email"),
        (user_pb2.RegisterRequest(email="c@example.com", password="short", name="x"), "at least 8"),
        (user_pb2.RegisterRequest(email="c@example.com", password="p" * 73, name="x"), "at most 72"),
        (user_pb2.RegisterRequest(email="c@example.com", password="long enough", name=""), "name"),
        (user_pb2.RegisterRequest(email="c@example.com", password="long enough", name="n" * 101), "name"),
    ]:
        details = await expect_status(stack.users.Register(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert needle in details


async def test_login_failures_look_identical(stack: Stack) -> None:
    await stack.register_and_login("carol@example.com", "right password")
    wrong = await expect_status(
        stack.users.Login(user_pb2.LoginRequest(email="carol@example.com", password="wrong password")),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    unknown = await expect_status(
        stack.users.Login(user_pb2.LoginRequest(email="nobody@example.com", password="wrong password")),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    assert wrong == unknown
    await expect_status(
        stack.users.Login(user_pb2.LoginRequest(email="carol@example.com", password="")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_me_token_errors(stack: Stack) -> None:
    await expect_status(stack.users.Me(user_pb2.MeRequest()), grpc.StatusCode.UNAUTHENTICATED)
    await expect_status(
        stack.users.Me(user_pb2.MeRequest(), metadata=bearer("garbage")), grpc.StatusCode.UNAUTHENTICATED
    )
    await expect_status(
        stack.users.Me(user_pb2.MeRequest(), metadata=(("authorization", "Basic abc"),)),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    user_id, _ = await stack.register_and_login("expiring@example.com")
    # Signed with the stack's own key for a real user, yet expired or meant for another audience.
    expired = TokenService(TokenSettings(TEST_JWT_SECRET.encode(), 60, "userd", "grpc-demo"))
    elsewhere = TokenService(TokenSettings(TEST_JWT_SECRET.encode(), 900, "userd", "another-audience"))
    for token in (
        expired.issue(user_id, datetime.now(UTC) - timedelta(minutes=5)).token,
        elsewhere.issue(user_id, datetime.now(UTC)).token,
    ):
        await expect_status(
            stack.users.Me(user_pb2.MeRequest(), metadata=bearer(token)), grpc.StatusCode.UNAUTHENTICATED
        )
        await expect_status(
            stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(token)),
            grpc.StatusCode.UNAUTHENTICATED,
        )


async def test_order_input_errors(stack: Stack) -> None:
    _, token = await stack.register_and_login("dave@example.com")
    bad_requests = [
        (order_pb2.CreateOrderRequest(request_id="", items=[item()]), "request_id"),
        (order_pb2.CreateOrderRequest(request_id="a", items=[]), "at least one item"),
        (order_pb2.CreateOrderRequest(request_id="a", items=[item(quantity=0)]), "quantity"),
        (order_pb2.CreateOrderRequest(request_id="a", items=[item(quantity=1001)]), "quantity"),
        (order_pb2.CreateOrderRequest(request_id="a", items=[item(price=-1)]), "unit_price_cents"),
        (order_pb2.CreateOrderRequest(request_id="a", items=[item(sku="")]), "sku"),
        (order_pb2.CreateOrderRequest(request_id="a", items=[item(sku="x" * 65)]), "sku"),
        (order_pb2.CreateOrderRequest(request_id="a", items=[item()] * 101), "at most 100"),
    ]
    for request, needle in bad_requests:
        details = await expect_status(
            stack.orders.CreateOrder(request, metadata=bearer(token)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert needle in details
    await expect_status(
        stack.orders.GetOrder(order_pb2.GetOrderRequest(order_id="nope"), metadata=bearer(token)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await expect_status(
        stack.orders.ListOrders(order_pb2.ListOrdersRequest(page_token="!!"), metadata=bearer(token)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await expect_status(
        stack.orders.ListOrders(order_pb2.ListOrdersRequest(page_size=-1), metadata=bearer(token)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    listed = await stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(token))
    assert list(listed.orders) == []  # nothing was created by the rejected requests


async def test_orders_need_a_valid_token(stack: Stack) -> None:
    for metadata in [(), bearer("garbage")]:
        await expect_status(
            stack.orders.CreateOrder(
                order_pb2.CreateOrderRequest(request_id="x", items=[item()]), metadata=metadata
            ),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        await expect_status(
            stack.orders.GetOrder(order_pb2.GetOrderRequest(order_id=str(uuid.uuid4())), metadata=metadata),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        await expect_status(
            stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=metadata),
            grpc.StatusCode.UNAUTHENTICATED,
        )


async def test_other_users_orders_are_not_found(stack: Stack) -> None:
    _, alice = await stack.register_and_login("alice2@example.com")
    _, mallory = await stack.register_and_login("mallory@example.com")
    order = (
        await stack.orders.CreateOrder(
            order_pb2.CreateOrderRequest(request_id="mine", items=[item()]), metadata=bearer(alice)
        )
    ).order
    await expect_status(
        stack.orders.GetOrder(order_pb2.GetOrderRequest(order_id=order.id), metadata=bearer(mallory)),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_status(
        stack.orders.GetOrder(order_pb2.GetOrderRequest(order_id=str(uuid.uuid4())), metadata=bearer(alice)),
        grpc.StatusCode.NOT_FOUND,
    )
    assert (
        list((await stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(mallory))).orders)
        == []
    )
    # The same request_id is per user: mallory's "mine" is a different order.
    theirs = await stack.orders.CreateOrder(
        order_pb2.CreateOrderRequest(request_id="mine", items=[item()]), metadata=bearer(mallory)
    )
    assert theirs.order.id != order.id


async def test_idempotent_create_under_concurrent_retries(stack: Stack) -> None:
    _, token = await stack.register_and_login("retry@example.com")
    request = order_pb2.CreateOrderRequest(request_id="same-key", items=[item(), item("SKU-9", 3, 5)])
    responses = await asyncio.gather(
        *(stack.orders.CreateOrder(request, metadata=bearer(token)) for _ in range(20))
    )
    assert len({r.order.id for r in responses}) == 1
    listed = await stack.orders.ListOrders(order_pb2.ListOrdersRequest(page_size=100), metadata=bearer(token))
    assert len(listed.orders) == 1
    # One creation and 19 replays: the losers of the race were answered from the stored order.
    assert stack.orderd.registry.get_sample_value("orderd_service_idempotent_replays_total") == 19
    # Reusing the key for a different basket is a caller bug, not a retry.
    details = await expect_status(
        stack.orders.CreateOrder(
            order_pb2.CreateOrderRequest(request_id="same-key", items=[item("OTHER")]), metadata=bearer(token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "request_id" in details


async def test_userd_down_gives_unavailable_fast(stack: Stack) -> None:
    _, token = await stack.register_and_login("outage@example.com")
    await stack.userd.stop(grace_seconds=0)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        started = loop.time()
        await expect_status(
            stack.orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=bearer(token), timeout=10),
            grpc.StatusCode.UNAVAILABLE,
        )
        assert loop.time() - started < 2.0
