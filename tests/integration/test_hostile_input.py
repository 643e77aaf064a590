"""Hostile input over a real socket, against both services on SQLite and PostgreSQL: every answer
names the caller's fault (INVALID_ARGUMENT, UNAUTHENTICATED, …), none is UNKNOWN or INTERNAL, the
services still serve afterwards, and the gRPC metrics count every call, undecodable ones included
(grpc.aio decodes before any handler runs: the handler wrapper takes the failure over)."""

from __future__ import annotations

import logging
import random
import uuid

import grpc
import pytest
from grpcdemo.genproto.order.v1 import order_pb2
from grpcdemo.genproto.user.v1 import user_pb2

from tests.support.observability_echo import Scrape, scrape
from tests.support.services import Stack, bearer

USER = "user.v1.UserService"
ORDER = "order.v1.OrderService"
METHODS = {
    f"/{USER}/Register": "user.v1.RegisterRequest",
    f"/{USER}/Login": "user.v1.LoginRequest",
    f"/{USER}/Me": "user.v1.MeRequest",
    f"/{ORDER}/CreateOrder": "order.v1.CreateOrderRequest",
    f"/{ORDER}/GetOrder": "order.v1.GetOrderRequest",
    f"/{ORDER}/ListOrders": "order.v1.ListOrdersRequest",
}
# Bytes no protobuf parser accepts: a truncated varint, wire type 7, an end-group without a start,
# a length past the end; and invalid UTF-8 in a declared `string` field (below: MeRequest has none,
# and an unknown field is kept as bytes, unchecked, as protobuf must).
UNDECODABLE = {
    "truncated varint": b"\x08\xff\xff",
    "wire type 7": b"\x0f",
    "unbalanced group": b"\x0c",
    "length past the end": b"\x0a\x10abc",
}
STRING_FIELD_TAG = {
    f"/{USER}/Register": b"\x0a",  # email = 1
    f"/{USER}/Login": b"\x0a",  # email = 1
    f"/{ORDER}/CreateOrder": b"\x0a",  # request_id = 1
    f"/{ORDER}/GetOrder": b"\x0a",  # order_id = 1
    f"/{ORDER}/ListOrders": b"\x12",  # page_token = 2
}
NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}


def raw(stack: Stack, path: str) -> grpc.aio.UnaryUnaryMultiCallable:
    channel = stack.users_channel if path.startswith(f"/{USER}") else stack.orders_channel
    return channel.unary_unary(path)  # bytes in, bytes out: nothing is encoded or decoded here


async def code_of(call: grpc.aio.UnaryUnaryCall) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def handled(scrape_: Scrape, path: str, code: str) -> float:
    service, method = path.lstrip("/").split("/")
    return scrape_.value(
        "grpc_server_handled_total",
        grpc_type="unary",
        grpc_service=service,
        grpc_method=method,
        grpc_code=code,
    )


async def scrapes(stack: Stack) -> tuple[Scrape, Scrape]:
    return (
        await scrape(f"http://127.0.0.1:{stack.userd.metrics_port}"),
        await scrape(f"http://127.0.0.1:{stack.orderd.metrics_port}"),
    )


def side(pair: tuple[Scrape, Scrape], path: str) -> Scrape:
    return pair[0] if path.startswith(f"/{USER}") else pair[1]


def payloads(kind: str) -> dict[str, bytes]:
    if kind == "invalid utf-8":
        return {path: tag + b"\x02\xc3\x28" for path, tag in STRING_FIELD_TAG.items()}
    return dict.fromkeys(METHODS, UNDECODABLE[kind])


@pytest.mark.parametrize("kind", [*sorted(UNDECODABLE), "invalid utf-8"])
async def test_undecodable_bytes_are_invalid_argument_counted_and_logged_once(
    stack: Stack, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent = payloads(kind)
    before = await scrapes(stack)
    with caplog.at_level(logging.WARNING):
        for path, payload in sent.items():
            code, details = await code_of(raw(stack, path)(payload, timeout=5))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (path, code, details)
            # A fixed message naming the request type; no parser detail, no class name of ours.
            assert details == f"request is not a valid {METHODS[path]} message"
    after = await scrapes(stack)
    for path in sent:
        assert (
            handled(side(after, path), path, "InvalidArgument")
            - handled(side(before, path), path, "InvalidArgument")
            == 1
        )
    refused = [r for r in caplog.records if r.getMessage() == "undecodable request refused"]
    # One line per process at most, however many calls (throttled), and never a traceback.
    assert 1 <= len(refused) <= 2
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in refused)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_random_bytes_never_answer_unknown_or_internal(stack: Stack) -> None:
    rng = random.Random(20261205)
    for _ in range(40):
        for path in METHODS:
            payload = rng.randbytes(rng.randrange(1, 64))
            code, details = await code_of(raw(stack, path)(payload, timeout=5))
            assert code not in NEVER, (path, payload, code, details)
    _, token = await stack.register_and_login(f"after-{uuid.uuid4().hex[:8]}@example.com")
    me = await stack.users.Me(user_pb2.MeRequest(), metadata=bearer(token), timeout=5)
    assert me.user.email.startswith("after-")


def hostile_user_requests() -> list[tuple[str, object]]:
    nul, nl = "\x00", "\n"
    return [
        (
            "Register",
            user_pb2.RegisterRequest(email=f"ann{nul}@example.com", password="correct horse", name="A"),
        ),
        ("Register", user_pb2.RegisterRequest(email="ann@example.com\n", password="correct horse", name="A")),
        (
            "Register",
            user_pb2.RegisterRequest(email="ann@example.com", password=f"correct{nul}horse", name="A"),
        ),
        (
            "Register",
            user_pb2.RegisterRequest(email="ann@example.com", password="correct horse", name=f"A{nl}B"),
        ),
        (
            "Register",
            user_pb2.RegisterRequest(email="ann@example.com", password="correct horse", name="A\x85B"),
        ),
        ("Login", user_pb2.LoginRequest(email=f"ann{nul}@example.com", password="correct horse")),
        ("Login", user_pb2.LoginRequest(email="ann@example.com", password=f"x{nul}" * 10)),
    ]


async def test_control_characters_in_user_fields_are_invalid_argument(stack: Stack) -> None:
    for method, request in hostile_user_requests():
        code, details = await code_of(getattr(stack.users, method)(request, timeout=5))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, request, code, details)


async def test_control_characters_in_order_fields_are_invalid_argument(stack: Stack) -> None:
    _, token = await stack.register_and_login(f"orders-{uuid.uuid4().hex[:8]}@example.com")
    item = order_pb2.OrderItem(sku="BOOK-1", quantity=1, unit_price_cents=100)
    bad_token = "eyJ0IjoxLCJpZCI6IlxcdTAwMDAifQ"  # {"t":1,"id":"\u0000"}
    requests = [
        ("CreateOrder", order_pb2.CreateOrderRequest(request_id="r1\n", items=[item])),
        ("CreateOrder", order_pb2.CreateOrderRequest(request_id="r\x001", items=[item])),
        (
            "CreateOrder",
            order_pb2.CreateOrderRequest(
                request_id="r2", items=[order_pb2.OrderItem(sku="A\n", quantity=1, unit_price_cents=1)]
            ),
        ),
        ("GetOrder", order_pb2.GetOrderRequest(order_id="\x00")),
        ("GetOrder", order_pb2.GetOrderRequest(order_id="{0b6c2a4e-8f2d-4e1c-9b7a-3d5e6f708192}")),
        ("ListOrders", order_pb2.ListOrdersRequest(page_token=bad_token)),
        ("ListOrders", order_pb2.ListOrdersRequest(page_token="abc\x00")),
    ]
    for method, request in requests:
        code, details = await code_of(
            getattr(stack.orders, method)(request, metadata=bearer(token), timeout=5)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, request, code, details)


async def test_the_same_email_in_nfc_nfd_or_upper_case_is_one_account(stack: Stack) -> None:
    suffix = uuid.uuid4().hex[:6]
    nfc, nfd = f"jos\u00e9{suffix}@example.com", f"jose\u0301{suffix}@example.com"
    await stack.users.Register(user_pb2.RegisterRequest(email=nfc, password="correct horse", name="J"))
    for other in (nfd, nfc.upper()):
        code, _ = await code_of(
            stack.users.Register(user_pb2.RegisterRequest(email=other, password="correct horse", name="J"))
        )
        assert code == grpc.StatusCode.ALREADY_EXISTS
    login = await stack.users.Login(user_pb2.LoginRequest(email=nfd.upper(), password="correct horse"))
    assert login.access_token


async def test_an_oversized_or_malformed_token_is_unauthenticated_without_asking_userd(stack: Stack) -> None:
    item = order_pb2.OrderItem(sku="BOOK-1", quantity=1, unit_price_cents=100)
    before = await scrapes(stack)
    for metadata in (
        (("authorization", "Bearer " + "x" * 10_000),),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer"),),
    ):
        code, details = await code_of(
            stack.orders.CreateOrder(
                order_pb2.CreateOrderRequest(request_id=uuid.uuid4().hex, items=[item]),
                metadata=metadata,
                timeout=5,
            )
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED, (metadata[0][1][:20], code, details)
    after = await scrapes(stack)
    me = {"grpc_type": "unary", "grpc_service": USER, "grpc_method": "Me"}
    assert after[0].value("grpc_server_started_total", **me) == before[0].value(
        "grpc_server_started_total", **me
    )
    assert after[1].value("grpc_client_started_total", **me) == before[1].value(
        "grpc_client_started_total", **me
    )
    assert (
        handled(after[1], f"/{ORDER}/CreateOrder", "Unauthenticated")
        - handled(before[1], f"/{ORDER}/CreateOrder", "Unauthenticated")
        == 3
    )
