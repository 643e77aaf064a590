"""A scriptable gRPC service for the observability tests, plus helpers to run it and read metrics.

Every method takes bytes commands (identity serialisers) that say what the handler does:
- `ok` answers (with the command); `abort:NOT_FOUND` aborts; `setcode:ALREADY_EXISTS` sets the code and returns;
  `setcode_raise:PERMISSION_DENIED` sets it and raises; `raise` raises RuntimeError; `sleep:2.5`
  sleeps then answers; `none` returns None from a unary handler.
- server streams take `N|command`: N messages are sent, then the command runs; `flood` sends 256 KiB
  messages until the client goes away.
- client streams act on the last message; bidi streams act on each message (`ok` echoes it).
Every handler is async, as the handler wrapper requires.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from grpcdemo.observability.server import HandlerWrapper, InstrumentedServer
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import free_port as free_port

SERVICE = "test.v1.EchoService"

UNARY_PATH = f"/{SERVICE}/Echo"
STRICT_UNARY_PATH = f"/{SERVICE}/EchoStrict"
CLIENT_STREAM_PATH = f"/{SERVICE}/Collect"
SERVER_STREAM_PATH = f"/{SERVICE}/Expand"
BIDI_PATH = f"/{SERVICE}/Chat"
WRITER_STREAM_PATH = f"/{SERVICE}/ExpandWriter"
READER_STREAM_PATH = f"/{SERVICE}/CollectReader"

FLOOD_MESSAGE = b"x" * (256 * 1024)


def _code(name: str) -> grpc.StatusCode:
    return grpc.StatusCode[name]


def _split(command: bytes) -> tuple[str, str]:
    action, _, arg = command.decode().partition(":")
    return action, arg


async def _act(command: bytes, context: grpc.aio.ServicerContext) -> bytes | None:
    """Runs one command; returns the reply for `ok`, None after set_code."""
    action, arg = _split(command)
    if action == "ok":
        return command
    if action == "abort":
        await context.abort(_code(arg), f"aborted with {arg}")
    if action == "setcode":
        context.set_code(_code(arg))
        context.set_details(f"set {arg}")
        return b""
    if action == "setcode_raise":
        context.set_code(_code(arg))
        raise RuntimeError("raised after set_code")
    if action == "raise":
        raise RuntimeError("handler failed")
    if action == "sleep":
        await asyncio.sleep(float(arg))
        return b"slept"
    if action == "none":
        return None
    raise ValueError(f"unknown command {command!r}")


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes | None:
    return await _act(request, context)


async def _collect(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes | None:
    messages = [message async for message in requests]
    last = messages[-1] if messages else b"ok"
    reply = await _act(last, context)
    return b"%d" % len(messages) if last == b"ok" else reply


async def _collect_reader(_: object, context: grpc.aio.ServicerContext) -> bytes | None:
    messages = []
    while (message := await context.read()) is not grpc.aio.EOF:
        messages.append(message)
    return await _act(messages[-1] if messages else b"ok", context)


def _stream_plan(request: bytes) -> tuple[int, bytes]:
    count, _, command = request.partition(b"|")
    return int(count), command


async def _expand(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    if request == b"flood":
        while True:
            yield FLOOD_MESSAGE
    count, command = _stream_plan(request)
    for index in range(count):
        yield b"%d" % index
    await _act(command, context)


async def _expand_writer(request: bytes, context: grpc.aio.ServicerContext) -> None:
    count, command = _stream_plan(request)
    for index in range(count):
        await context.write(b"%d" % index)
    await _act(command, context)


async def _chat(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    async for message in requests:
        reply = await _act(message, context)
        if message == b"ok" and reply is not None:
            yield reply


def generic_handlers() -> list[Any]:
    return [
        grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Echo": grpc.unary_unary_rpc_method_handler(_echo),
                # bytes(None) raises, as protobuf's serializer does for a handler returning None.
                "EchoStrict": grpc.unary_unary_rpc_method_handler(_echo, response_serializer=bytes),
                "Collect": grpc.stream_unary_rpc_method_handler(_collect),
                "Expand": grpc.unary_stream_rpc_method_handler(_expand),
                "Chat": grpc.stream_stream_rpc_method_handler(_chat),
                "ExpandWriter": grpc.unary_stream_rpc_method_handler(_expand_writer),
                "CollectReader": grpc.stream_unary_rpc_method_handler(_collect_reader),
            },
        ),
    ]


ASYNC_METHODS: dict[str, tuple[bool, bool]] = {
    # name: (client_streaming, server_streaming)
    "Echo": (False, False),
    "EchoStrict": (False, False),
    "Collect": (True, False),
    "Expand": (False, True),
    "Chat": (True, True),
    "ExpandWriter": (False, True),
    "CollectReader": (True, False),
}


def echo_service_descriptor() -> ServiceDescriptor:
    """A protobuf ServiceDescriptor of the async echo service, as protoc would produce for it."""
    file = descriptor_pb2.FileDescriptorProto(name="test/v1/echo.proto", package="test.v1", syntax="proto3")
    blob = file.message_type.add(name="Blob")
    blob.field.add(name="data", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES)
    service = file.service.add(name="EchoService")
    for name, (client_streaming, server_streaming) in ASYNC_METHODS.items():
        service.method.add(
            name=name,
            input_type=".test.v1.Blob",
            output_type=".test.v1.Blob",
            client_streaming=client_streaming,
            server_streaming=server_streaming,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool.FindServiceByName(SERVICE)


@dataclass
class EchoServer:
    server: grpc.aio.Server
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def echo_server(wrapper: HandlerWrapper | None = None) -> AsyncIterator[EchoServer]:
    """The echo service on 127.0.0.1 with an OS-chosen port, its handlers wrapped by `wrapper` (the
    one handler wrapper, as the services register theirs) unless it is None."""
    server = grpc.aio.server()
    target: grpc.aio.Server = server if wrapper is None else InstrumentedServer(server, wrapper)
    target.add_generic_rpc_handlers(generic_handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield EchoServer(server, port)
    finally:
        await server.stop(grace=None)


@asynccontextmanager
async def echo_channel(target: str, interceptors: Sequence[Any] = ()) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(target, interceptors=list(interceptors)) as channel:
        yield channel


# ---------------------------------------------------------------------------------------------
# Reading the metrics endpoint


def http_get(url: str, accept: str | None = None, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


class Scrape:
    """One parsed text-format scrape: `value(sample_name, **labels)` is 0.0 for absent series."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self.families: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for (sample, labels) in self.samples if sample == name]


async def scrape(base_url: str) -> Scrape:
    status, _, body = await asyncio.to_thread(http_get, base_url + "/metrics")
    assert status == 200
    return Scrape(body.decode())


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 5.0, interval: float = 0.02
) -> None:
    """Waits for `check()` to hold; the server side of a cancelled call finishes after the client's."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class Recorded:
    """What one side recorded for one method between two scrapes (deltas)."""

    started: float
    handled: dict[str, float]
    msg_sent: float
    msg_received: float
    latency_count: float
    in_flight: float | None = None


class Scrapes(Protocol):
    async def scrape(self) -> Scrape: ...


async def server_finished(target: Scrapes, before: Scrape, path: str, grpc_type: str) -> None:
    """Waits until the server has recorded one finished call of `path` since `before`: it records a
    stream when grpc is done with it, which can be after the client is."""

    async def done() -> bool:
        server = recorded(before, await target.scrape(), "server", path, grpc_type)
        return server.latency_count == 1 and server.in_flight == 0

    await eventually(done)


def recorded(before: Scrape, after: Scrape, side: str, path: str, grpc_type: str) -> Recorded:
    service, _, method = path.lstrip("/").rpartition("/")
    labels = {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": method}
    prefix = f"grpc_{side}"

    def delta(name: str, **extra: str) -> float:
        return after.value(name, **labels, **extra) - before.value(name, **labels, **extra)

    codes = {
        series["grpc_code"]
        for series in after.series(f"{prefix}_handled_total")
        if all(series.get(key) == value for key, value in labels.items())
    }
    handled = {code: delta(f"{prefix}_handled_total", grpc_code=code) for code in codes}
    return Recorded(
        started=delta(f"{prefix}_started_total"),
        handled={code: value for code, value in handled.items() if value},
        msg_sent=delta(f"{prefix}_msg_sent_total"),
        msg_received=delta(f"{prefix}_msg_received_total"),
        latency_count=delta(f"{prefix}_handling_seconds_count"),
        in_flight=(
            after.value("grpc_server_in_flight_requests", grpc_service=service, grpc_method=method)
            if side == "server"
            else None
        ),
    )
