"""Server CPU per unary call with and without the instrumentation (`make bench-metrics`).

One server process hosts an echo server per configuration (same process, same event loop, own
port), and one grpc.aio client drives them in turn in short blocks, rotating the order, so that load
from other work on a shared machine lands on every configuration alike. Server CPU per call is the
server process's `time.process_time()` (all threads, grpc's included) across a block, read through a
control RPC, divided by the block's calls. Overheads are the median of per-block ratios against the
`bare` block of the same rotation (paired, so slow drift cancels); plain per-call medians are shown
too. The client's CPU per call is reported without and with the client interceptors.

End-to-end figures move by several percent between runs on a busy machine, so the wrapper's own cost
is also measured in-process (a unary handler awaited directly vs through the wrapper, no network),
which is steady, and shown as a share of the bare server's CPU per call.

Configurations:
- bare:      no wrapper, no interceptor
- noop:      one aio interceptor that only passes the call on: what grpc.aio charges for having any
             (for reference: the project uses none on the server)
- passthrough: the handler registered inside an `async def` that only awaits it: what wrapping a
             handler at registration costs at all, before recording anything
- metrics:   the handler wrapper with metrics only (goal: <= 1.05x bare)
- services:  the handler wrapper as the services run it: span, metrics, the fault hook (off) and
             error mapping, with spans built for an exporter (compose, Kubernetes)
- unexported: the same when no exporter is configured (native `make up`): spans are contexts only
- otel-aio:  opentelemetry-instrumentation-grpc's aio server interceptor alone, for reference
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from grpcdemo.faults import FaultInjector
from grpcdemo.observability import GrpcClientMetrics, GrpcServerMetrics, MethodSpec
from grpcdemo.observability.client import client_interceptors
from grpcdemo.observability.server import HandlerWrapper, InstrumentedServer
from grpcdemo.observability.tracing import ClientSpans, ServerSpans, create_tracer_provider
from grpcdemo.runtime.status_mapping import map_error
from prometheus_client import CollectorRegistry

CONFIGS = ("bare", "noop", "passthrough", "metrics", "services", "unexported", "otel-aio")
CLIENTS = ("plain", "noop", "metrics", "traced")
ECHO = "/bench.v1.Echo/Echo"
CPU = "/bench.v1.Control/Cpu"
PAYLOAD = b"x" * 64
SCRIPT = str(Path(__file__).resolve())
ECHO_SPEC = MethodSpec("bench.v1.Echo", "Echo", "unary")


class _NoopServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        return await continuation(handler_call_details)


class _NoopClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(client_call_details, request)


def _server(config: str) -> tuple[grpc.aio.Server, Any]:
    """(the server to start, the object to register the handlers on)."""
    if config == "noop":
        server = grpc.aio.server(interceptors=[_NoopServerInterceptor()])
        return server, server
    if config == "otel-aio":
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        interceptor = aio_server_interceptor(tracer_provider=create_tracer_provider("bench", environ={}))  # type: ignore[no-untyped-call]
        server = grpc.aio.server(interceptors=[interceptor])
        return server, server
    server = grpc.aio.server()
    if config == "bare":
        return server, server
    if config == "passthrough":
        return server, _Passthrough(server)
    metrics = GrpcServerMetrics(CollectorRegistry())
    metrics.preinitialize_methods([ECHO_SPEC])
    if config == "metrics":
        return server, InstrumentedServer(server, HandlerWrapper(metrics))
    faults = FaultInjector("bench", CollectorRegistry())
    spans = ServerSpans(create_tracer_provider("bench", environ={}), exported=config == "services")
    wrapper = HandlerWrapper(metrics, spans, before_call=faults.decide, map_error=map_error)
    return server, InstrumentedServer(server, wrapper)


async def _echo(request: bytes, _: Any) -> bytes:
    return request


class _Passthrough:
    """Registers every handler inside a coroutine that only awaits it."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        def wrap(handler: Any) -> Any:
            behavior = handler.unary_unary

            async def passthrough(request: Any, context: Any) -> Any:
                return await behavior(request, context)

            return grpc.unary_unary_rpc_method_handler(passthrough)

        self._server.add_registered_method_handlers(service, {k: wrap(h) for k, h in handlers.items()})


async def _cpu(_: bytes, __: Any) -> bytes:
    return struct.pack("!d", time.process_time())


async def serve() -> None:
    """Every configuration in this one process; prints {config: port} as one JSON line."""
    servers = {}
    ports = {}
    for config in CONFIGS:
        server, registrar = _server(config)
        # Registered methods, as generated code registers them (a lookup per call is left out).
        registrar.add_registered_method_handlers(
            "bench.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
        )
        server.add_registered_method_handlers(
            "bench.v1.Control", {"Cpu": grpc.unary_unary_rpc_method_handler(_cpu)}
        )
        ports[config] = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers[config] = server
    print(json.dumps(ports), flush=True)
    await asyncio.gather(*(server.wait_for_termination() for server in servers.values()))


async def _drive(channel: grpc.aio.Channel, calls: int, concurrency: int) -> float:
    """`calls` echo calls, `concurrency` at a time; returns this (client) process's CPU seconds."""
    echo = channel.unary_unary(ECHO)

    async def worker() -> None:
        for _ in range(calls // concurrency):
            await echo(PAYLOAD)

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu


async def _server_cpu(channel: grpc.aio.Channel) -> float:
    value: float = struct.unpack("!d", await channel.unary_unary(CPU)(b""))[0]
    return value


def _rotated(items: Sequence[str], shift: int) -> list[str]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


async def bench(blocks: int, calls: int, concurrency: int) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, SCRIPT, "--serve", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        ports: dict[str, int] = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=60))
        servers = {config: grpc.aio.insecure_channel(f"127.0.0.1:{port}") for config, port in ports.items()}
        bare_target = f"127.0.0.1:{ports['bare']}"
        clients = {
            "plain": servers["bare"],
            "noop": grpc.aio.insecure_channel(bare_target, interceptors=[_NoopClientInterceptor()]),
            "metrics": grpc.aio.insecure_channel(
                bare_target, interceptors=client_interceptors(GrpcClientMetrics(CollectorRegistry()))
            ),
            "traced": grpc.aio.insecure_channel(
                bare_target,
                interceptors=client_interceptors(
                    GrpcClientMetrics(CollectorRegistry()),
                    ClientSpans(create_tracer_provider("bench-client", environ={})),
                ),
            ),
        }
        calls = calls // concurrency * concurrency
        for channel in [*servers.values(), *clients.values()]:
            await _drive(channel, calls, concurrency)  # warm-up: connections, caches

        server_us: dict[str, list[float]] = {config: [] for config in CONFIGS}
        client_us: dict[str, list[float]] = {client: [] for client in CLIENTS}
        started = time.perf_counter()
        for block in range(blocks):
            for config in _rotated(CONFIGS, block):
                before = await _server_cpu(servers[config])
                await _drive(servers[config], calls, concurrency)
                server_us[config].append((await _server_cpu(servers[config]) - before) / calls * 1e6)
            for client in _rotated(CLIENTS, block):
                client_us[client].append(await _drive(clients[client], calls, concurrency) / calls * 1e6)
        elapsed = time.perf_counter() - started
        for channel in {*servers.values(), *clients.values()}:
            await channel.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
    _report(server_us, client_us, blocks, calls, concurrency, elapsed, await _wrapper_cost_us())


class _Context:
    """Just what the unary wrapper asks of a servicer context."""

    def code(self) -> None:
        return None

    def time_remaining(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[()]:
        return ()


async def _wrapper_cost_us(calls: int = 200_000) -> float:
    """CPU per call the handler wrapper (metrics only) adds around an async unary handler, in-process."""
    metrics = GrpcServerMetrics(CollectorRegistry())
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    wrapped = HandlerWrapper(metrics).wrap(ECHO, handler).unary_unary
    context = _Context()

    async def timed(behavior: Any) -> float:
        start = time.process_time()
        for _ in range(calls):
            await behavior(PAYLOAD, context)
        return time.process_time() - start

    await timed(wrapped)  # warm-up
    costs = [await timed(wrapped) - await timed(_echo) for _ in range(3)]
    return statistics.median(costs) / calls * 1e6


def _paired(values: dict[str, list[float]], config: str, base: str) -> float:
    """Median over blocks of config/base CPU per call, each pair measured back to back."""
    return statistics.median(a / b for a, b in zip(values[config], values[base], strict=True))


def _report(
    server_us: dict[str, list[float]],
    client_us: dict[str, list[float]],
    blocks: int,
    calls: int,
    concurrency: int,
    elapsed: float,
    wrapper_us: float,
) -> None:
    print(
        f"unary echo, {blocks} blocks x {calls} calls per configuration, {concurrency} in flight, {elapsed:.0f} s"
    )
    print(f"{'server config':<14} {'CPU/call median':>16} {'paired vs bare':>15}   per-block CPU/call (us)")
    for config in CONFIGS:
        values = server_us[config]
        print(
            f"{config:<14} {statistics.median(values):>13.1f} us {100 * (_paired(server_us, config, 'bare') - 1):>+14.1f}%"
            f"   {' '.join(f'{v:.0f}' for v in values)}"
        )
    print(f"metrics wrapper:     {_paired(server_us, 'metrics', 'bare'):.3f} x bare (goal <= 1.05)")
    print(
        f"as the services run: {_paired(server_us, 'services', 'bare'):.3f} x bare (span + metrics + hooks)"
    )
    print(f"OpenTelemetry's aio interceptor alone: {_paired(server_us, 'otel-aio', 'bare'):.3f} x bare")
    bare = statistics.median(server_us["bare"])
    print(
        f"metrics wrapper in-process: {wrapper_us:.1f} us/call = {100 * wrapper_us / bare:.1f}% of bare CPU/call"
    )
    print(f"an interceptor that does nothing: {_paired(server_us, 'noop', 'bare'):.3f} x bare")
    print(
        f"wrapping at registration at all (passthrough): {_paired(server_us, 'passthrough', 'bare'):.3f} x bare; "
        f"metrics over that: {_paired(server_us, 'metrics', 'passthrough'):.3f} x"
    )
    print(
        f"client CPU/call median: plain {statistics.median(client_us['plain']):.1f} us, "
        f"no-op interceptor {statistics.median(client_us['noop']):.1f} us, "
        f"metrics {statistics.median(client_us['metrics']):.1f} us "
        f"({_paired(client_us, 'metrics', 'plain'):.3f} x plain), "
        f"metrics + span {statistics.median(client_us['traced']):.1f} us "
        f"({_paired(client_us, 'traced', 'plain'):.3f} x plain)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--calls", type=int, default=800, help="calls per configuration per block")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
    else:
        asyncio.run(bench(args.blocks, args.calls, args.concurrency))


if __name__ == "__main__":
    main()
