"""Every way a unary call can end, recorded with the code the peer really got, on both sides; values
read from the real /metrics endpoint."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpcdemo.observability.client import client_interceptors
from grpcdemo.observability.grpc_names import go_code_name

from tests.integration.observability.conftest import EchoStack
from tests.support.observability_echo import (
    ASYNC_METHODS,
    STRICT_UNARY_PATH,
    UNARY_PATH,
    Recorded,
    Scrape,
    echo_channel,
    eventually,
    free_port,
    recorded,
)
from tests.support.observability_echo import SERVICE as ECHO_SERVICE


async def call_unary(stack: EchoStack, path: str, command: bytes, grpc_timeout: float | None = None) -> str:
    """Returns the Go name of the code the client received."""
    try:
        await stack.channel.unary_unary(path)(command, timeout=grpc_timeout)
    except grpc.aio.AioRpcError as error:
        return go_code_name(error.code())
    return "OK"


def finished(code: str, *, server_sent: float) -> tuple[Recorded, Recorded]:
    """Expected (server, client) deltas for one unary call that ended with `code`."""
    ok = code == "OK"
    server = Recorded(1, {code: 1}, msg_sent=server_sent, msg_received=1, latency_count=1, in_flight=0)
    client = Recorded(1, {code: 1}, msg_sent=1, msg_received=1 if ok else 0, latency_count=1)
    return server, client


async def test_preinitialised_series_exist_before_any_call(echo_stack: EchoStack) -> None:
    scrape = await echo_stack.scrape()
    for side in ("server", "client"):
        for method in ASYNC_METHODS:
            service, method_name = ECHO_SERVICE, method
            series = [
                labels
                for labels in scrape.series(f"grpc_{side}_handled_total")
                if labels["grpc_service"] == service and labels["grpc_method"] == method_name
            ]
            assert [labels["grpc_code"] for labels in series] == ["OK"], (side, method)
            assert scrape.value(f"grpc_{side}_handled_total", **series[0]) == 0
    assert scrape.families["grpc_server_in_flight_requests"] == "gauge"


@pytest.mark.parametrize(
    ("path", "command", "code"),
    [
        (UNARY_PATH, b"ok", "OK"),
        (UNARY_PATH, b"abort:NOT_FOUND", "NotFound"),
        (UNARY_PATH, b"abort:INVALID_ARGUMENT", "InvalidArgument"),
        (UNARY_PATH, b"abort:UNAUTHENTICATED", "Unauthenticated"),
        (UNARY_PATH, b"abort:UNAVAILABLE", "Unavailable"),
        (UNARY_PATH, b"setcode:ALREADY_EXISTS", "AlreadyExists"),
        (UNARY_PATH, b"setcode_raise:PERMISSION_DENIED", "PermissionDenied"),
        (UNARY_PATH, b"raise", "Unknown"),
        # No serializer: grpc sends an empty message and OK.
        (UNARY_PATH, b"none", "OK"),
        # A serializer that rejects None (as protobuf's does): the client gets Unknown.
        (STRICT_UNARY_PATH, b"none", "Unknown"),
    ],
)
async def test_outcome_is_recorded_as_the_client_received_it(
    echo_stack: EchoStack, path: str, command: bytes, code: str
) -> None:
    before = await echo_stack.scrape()
    assert await call_unary(echo_stack, path, command) == code
    after = await echo_stack.scrape()

    server, client = finished(code, server_sent=1 if code == "OK" else 0)
    assert recorded(before, after, "server", path, "unary") == server
    assert recorded(before, after, "client", path, "unary") == client


async def test_deadline_exceeded_on_both_sides(echo_stack: EchoStack) -> None:
    """Concurrent calls, because then the client's cancellation usually reaches the server while
    the server's own copy of the deadline still shows a millisecond or so left."""
    calls = 20
    before = await echo_stack.scrape()
    codes = await asyncio.gather(
        *(call_unary(echo_stack, UNARY_PATH, b"sleep:3", grpc_timeout=0.1) for _ in range(calls))
    )
    assert set(codes) == {"DeadlineExceeded"}

    async def server_done() -> bool:
        server = recorded(before, await echo_stack.scrape(), "server", UNARY_PATH, "unary")
        return server.latency_count == calls and server.in_flight == 0

    await eventually(server_done)
    after = await echo_stack.scrape()
    assert recorded(before, after, "server", UNARY_PATH, "unary") == Recorded(
        calls, {"DeadlineExceeded": calls}, msg_sent=0, msg_received=calls, latency_count=calls, in_flight=0
    )
    assert recorded(before, after, "client", UNARY_PATH, "unary") == Recorded(
        calls, {"DeadlineExceeded": calls}, msg_sent=calls, msg_received=0, latency_count=calls
    )
    labels = {"grpc_type": "unary", "grpc_service": ECHO_SERVICE, "grpc_method": "Echo"}
    for side in ("server", "client"):
        # Ended at the 100 ms deadline, not after the 3 s sleep.
        assert after.value(f"grpc_{side}_handling_seconds_bucket", **labels, le="0.05") == 0
        assert after.value(f"grpc_{side}_handling_seconds_bucket", **labels, le="1.0") == calls


async def test_client_cancel_is_canceled_on_both_sides(echo_stack: EchoStack) -> None:
    before = await echo_stack.scrape()
    call = echo_stack.channel.unary_unary(UNARY_PATH)(b"sleep:3", timeout=30)

    async def server_started() -> bool:
        scrape = await echo_stack.scrape()
        return (
            scrape.value("grpc_server_in_flight_requests", grpc_service=ECHO_SERVICE, grpc_method="Echo") == 1
        )

    await eventually(server_started)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    async def server_done() -> bool:
        return recorded(before, await echo_stack.scrape(), "server", UNARY_PATH, "unary").latency_count == 1

    await eventually(server_done)
    after = await echo_stack.scrape()
    server, client = finished("Canceled", server_sent=0)
    assert recorded(before, after, "server", UNARY_PATH, "unary") == server
    assert recorded(before, after, "client", UNARY_PATH, "unary") == client


async def test_server_down_is_unavailable_on_the_client(echo_stack: EchoStack) -> None:
    target = f"127.0.0.1:{free_port()}"
    before = await echo_stack.scrape()
    async with echo_channel(target, client_interceptors(echo_stack.client_metrics)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(UNARY_PATH)(b"ok", timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    after = await echo_stack.scrape()
    assert recorded(before, after, "client", UNARY_PATH, "unary") == Recorded(
        1, {"Unavailable": 1}, msg_sent=1, msg_received=0, latency_count=1
    )
    # Nothing reached the server.
    assert recorded(before, after, "server", UNARY_PATH, "unary").started == 0


async def test_unimplemented_methods_leave_no_server_series(echo_stack: EchoStack) -> None:
    assert await call_unary(echo_stack, f"/{ECHO_SERVICE}/DoesNotExist", b"ok") == "Unimplemented"
    scrape: Scrape = await echo_stack.scrape()
    assert all(
        labels["grpc_method"] != "DoesNotExist" for labels in scrape.series("grpc_server_started_total")
    )
    # The client did make the call, so it counts it.
    assert (
        scrape.value(
            "grpc_client_handled_total",
            grpc_type="unary",
            grpc_service=ECHO_SERVICE,
            grpc_method="DoesNotExist",
            grpc_code="Unimplemented",
        )
        == 1
    )
