"""Streaming calls of all three kinds: each message counted once per side, and the final code."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpcdemo.observability.grpc_names import go_code_name

from tests.integration.observability.conftest import EchoStack
from tests.support.observability_echo import (
    BIDI_PATH,
    CLIENT_STREAM_PATH,
    READER_STREAM_PATH,
    SERVER_STREAM_PATH,
    SERVICE,
    WRITER_STREAM_PATH,
    Recorded,
    eventually,
    recorded,
    server_finished,
)


async def drain(call: grpc.aio.Call) -> tuple[list[bytes], str]:
    received: list[bytes] = []
    try:
        async for message in call:
            received.append(message)
    except grpc.aio.AioRpcError as error:
        return received, go_code_name(error.code())
    return received, "OK"


@pytest.mark.parametrize(
    ("path", "messages", "code", "server_sent"),
    [
        (CLIENT_STREAM_PATH, [b"ok", b"ok", b"ok"], "OK", 1),
        (CLIENT_STREAM_PATH, [b"ok", b"ok", b"abort:FAILED_PRECONDITION"], "FailedPrecondition", 0),
        (READER_STREAM_PATH, [b"ok", b"ok"], "OK", 1),
        (READER_STREAM_PATH, [b"ok", b"raise"], "Unknown", 0),
    ],
)
async def test_client_stream(
    echo_stack: EchoStack, path: str, messages: list[bytes], code: str, server_sent: int
) -> None:
    before = await echo_stack.scrape()
    try:
        await echo_stack.channel.stream_unary(path)(iter(messages))
        received_code = "OK"
    except grpc.aio.AioRpcError as error:
        received_code = go_code_name(error.code())
    assert received_code == code
    after = await echo_stack.scrape()
    assert recorded(before, after, "server", path, "client_stream") == Recorded(
        1, {code: 1}, msg_sent=server_sent, msg_received=len(messages), latency_count=1, in_flight=0
    )
    assert recorded(before, after, "client", path, "client_stream") == Recorded(
        1, {code: 1}, msg_sent=len(messages), msg_received=server_sent, latency_count=1
    )


async def test_client_stream_with_the_write_api(echo_stack: EchoStack) -> None:
    """The interceptor returns before the call ends, so a caller writing afterwards is not blocked."""
    before = await echo_stack.scrape()
    call = echo_stack.channel.stream_unary(CLIENT_STREAM_PATH)()
    for _ in range(4):
        await call.write(b"ok")
    await call.done_writing()
    assert await asyncio.wait_for(call, timeout=5) == b"4"
    after = await echo_stack.scrape()
    assert recorded(before, after, "client", CLIENT_STREAM_PATH, "client_stream") == Recorded(
        1, {"OK": 1}, msg_sent=4, msg_received=1, latency_count=1
    )
    assert recorded(before, after, "server", CLIENT_STREAM_PATH, "client_stream").msg_received == 4


@pytest.mark.parametrize(
    ("path", "request_", "sent", "code"),
    [
        (SERVER_STREAM_PATH, b"4|ok", 4, "OK"),
        (SERVER_STREAM_PATH, b"0|ok", 0, "OK"),
        (SERVER_STREAM_PATH, b"2|abort:OUT_OF_RANGE", 2, "OutOfRange"),
        (SERVER_STREAM_PATH, b"3|setcode:DATA_LOSS", 3, "DataLoss"),
        (SERVER_STREAM_PATH, b"1|raise", 1, "Unknown"),
        (WRITER_STREAM_PATH, b"3|ok", 3, "OK"),
        (WRITER_STREAM_PATH, b"2|abort:ABORTED", 2, "Aborted"),
        # Not abort: grpcio 1.85 itself hangs a sync stream that aborts from its worker thread.
    ],
)
async def test_server_stream(echo_stack: EchoStack, path: str, request_: bytes, sent: int, code: str) -> None:
    before = await echo_stack.scrape()
    received, received_code = await drain(echo_stack.channel.unary_stream(path)(request_))
    assert (len(received), received_code) == (sent, code)
    await server_finished(echo_stack, before, path, "server_stream")
    after = await echo_stack.scrape()
    assert recorded(before, after, "server", path, "server_stream") == Recorded(
        1, {code: 1}, msg_sent=sent, msg_received=1, latency_count=1, in_flight=0
    )
    assert recorded(before, after, "client", path, "server_stream") == Recorded(
        1, {code: 1}, msg_sent=1, msg_received=sent, latency_count=1
    )


async def test_server_stream_deadline(echo_stack: EchoStack) -> None:
    before = await echo_stack.scrape()
    received, code = await drain(
        echo_stack.channel.unary_stream(SERVER_STREAM_PATH)(b"2|sleep:3", timeout=0.2)
    )
    assert (len(received), code) == (2, "DeadlineExceeded")
    await server_finished(echo_stack, before, SERVER_STREAM_PATH, "server_stream")
    after = await echo_stack.scrape()
    assert recorded(before, after, "server", SERVER_STREAM_PATH, "server_stream") == Recorded(
        1, {"DeadlineExceeded": 1}, msg_sent=2, msg_received=1, latency_count=1, in_flight=0
    )
    assert recorded(before, after, "client", SERVER_STREAM_PATH, "server_stream").handled == {
        "DeadlineExceeded": 1
    }


async def test_client_cancelling_a_flooding_stream_is_canceled_on_both_sides(echo_stack: EchoStack) -> None:
    """The server is typically blocked writing (flow control) when the cancel arrives, so its stream
    ends outside the handler: recorded when grpc finalises the response generator."""
    before = await echo_stack.scrape()
    call = echo_stack.channel.unary_stream(SERVER_STREAM_PATH)(b"flood")
    taken = 0
    async for _ in call:
        taken += 1
        if taken == 3:
            break
    call.cancel()
    await server_finished(echo_stack, before, SERVER_STREAM_PATH, "server_stream")
    after = await echo_stack.scrape()
    server = recorded(before, after, "server", SERVER_STREAM_PATH, "server_stream")
    assert server.handled == {"Canceled": 1}
    assert server.in_flight == 0
    assert server.msg_sent >= 3
    client = recorded(before, after, "client", SERVER_STREAM_PATH, "server_stream")
    assert client == Recorded(1, {"Canceled": 1}, msg_sent=1, msg_received=3, latency_count=1)


@pytest.mark.parametrize(
    ("messages", "replies", "code"),
    [
        ([b"ok"] * 5, 5, "OK"),
        ([b"ok", b"ok", b"abort:RESOURCE_EXHAUSTED"], 2, "ResourceExhausted"),
        ([b"ok", b"raise"], 1, "Unknown"),
    ],
)
async def test_bidi_stream(echo_stack: EchoStack, messages: list[bytes], replies: int, code: str) -> None:
    before = await echo_stack.scrape()
    received, received_code = await drain(echo_stack.channel.stream_stream(BIDI_PATH)(iter(messages)))
    assert (len(received), received_code) == (replies, code)
    await server_finished(echo_stack, before, BIDI_PATH, "bidi_stream")
    after = await echo_stack.scrape()
    assert recorded(before, after, "server", BIDI_PATH, "bidi_stream") == Recorded(
        1, {code: 1}, msg_sent=replies, msg_received=len(messages), latency_count=1, in_flight=0
    )
    assert recorded(before, after, "client", BIDI_PATH, "bidi_stream") == Recorded(
        1, {code: 1}, msg_sent=len(messages), msg_received=replies, latency_count=1
    )


async def test_bidi_with_read_and_write(echo_stack: EchoStack) -> None:
    before = await echo_stack.scrape()
    call = echo_stack.channel.stream_stream(BIDI_PATH)()
    for _ in range(3):
        await call.write(b"ok")
        assert await call.read() == b"ok"
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    await server_finished(echo_stack, before, BIDI_PATH, "bidi_stream")
    after = await echo_stack.scrape()
    assert recorded(before, after, "client", BIDI_PATH, "bidi_stream") == Recorded(
        1, {"OK": 1}, msg_sent=3, msg_received=3, latency_count=1
    )
    assert recorded(before, after, "server", BIDI_PATH, "bidi_stream") == Recorded(
        1, {"OK": 1}, msg_sent=3, msg_received=3, latency_count=1, in_flight=0
    )


async def test_in_flight_counts_open_streams(echo_stack: EchoStack) -> None:
    calls = [echo_stack.channel.unary_stream(SERVER_STREAM_PATH)(b"1|sleep:3") for _ in range(3)]
    for call in calls:
        assert await call.read() == b"0"

    async def three_open() -> bool:
        scrape = await echo_stack.scrape()
        return scrape.value("grpc_server_in_flight_requests", grpc_service=SERVICE, grpc_method="Expand") == 3

    await eventually(three_open)
    for call in calls:
        call.cancel()

    async def none_open() -> bool:
        scrape = await echo_stack.scrape()
        return scrape.value("grpc_server_in_flight_requests", grpc_service=SERVICE, grpc_method="Expand") == 0

    await eventually(none_open)
