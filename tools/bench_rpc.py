"""`make bench-rpc`: what each RPC costs, next to the ceiling of a bare grpc.aio server, in one run.

Targets, each driven in turn by a client in its own process (16 calls in flight, closed loop, a
warm-up, then a measured window), in --rounds alternating rounds:
- echo: a bare grpc.aio server answering a 64-byte message, nothing else (the ceiling);
- services: userd and orderd as `make up` starts them (tools/nativestack; SQLite, every layer on);
- handlers: the same composition roots with the handler wrapper replaced by a pass-through, so the
  table splits the cost of the handler path (servicer, domain, database) from the cost of the layers
  around it (span, metrics, admission, faults, error mapping).

Per window: calls/s, p99, and server CPU per call from /proc (utime + stime of the serving
processes; an orderd row counts orderd and userd together, as a call costs both). Ratios are taken
against the echo window of the same round, and the table shows their medians over rounds. A window
during which other processes used more than --noise-limit of a core is flagged: its numbers are
disturbed (these machines drift ±20% between runs anyway; compare ratios, not absolutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from nativestack.components import (  # noqa: E402
    GrpcHealthProbe,
    ServicePorts,
    free_port,
    service_components,
    services_settings,
)
from nativestack.supervisor import running  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
ECHO_PATH = "/bench.v1.Echo/Echo"
RPCS = ("Me", "GetOrder", "CreateOrder", "ListOrders")
TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Servers


async def serve_echo(port_file: Path) -> None:
    import grpc

    async def echo(request: bytes, _context: Any) -> bytes:
        return request

    server = grpc.aio.server()
    server.add_registered_method_handlers(
        "bench.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))  # noqa: ASYNC240 - once, before serving
    await server.wait_for_termination()


async def serve_handlers(service: str) -> None:
    """The service's own composition root (config from the environment, as `make up` runs it) with
    the handler wrapper swapped for a pass-through: the handlers on a bare grpc.aio server."""
    import signal

    from grpcdemo.runtime import grpc_server

    def unwrapped(server: Any, _wrapper: Any) -> Any:
        return server

    setattr(grpc_server, "InstrumentedServer", unwrapped)  # noqa: B010 - the one seam swapped
    if service == "userd":
        from userd import app, config
    else:
        from orderd import app, config  # type: ignore[no-redef]
    host = await app.create_server(config.load())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await host.stop(0)


# ---------------------------------------------------------------------------------------------
# Client


async def drive(
    target: dict[str, str], rpc: str, warmup: float, seconds: float, in_flight: int
) -> dict[str, Any]:
    """Closed loop, `in_flight` workers; returns calls, errors and latency percentiles of the window."""
    import grpc
    from grpcdemo.genproto.order.v1 import order_pb2, order_pb2_grpc
    from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

    async with contextlib.AsyncExitStack() as stack:
        if rpc == "echo":
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(target["echo"]))
            echo = channel.unary_unary(ECHO_PATH)
            payload = b"x" * 64

            async def call() -> None:
                await echo(payload)

        else:
            user_channel = await stack.enter_async_context(grpc.aio.insecure_channel(target["userd"]))
            order_channel = await stack.enter_async_context(grpc.aio.insecure_channel(target["orderd"]))
            users = user_pb2_grpc.UserServiceStub(user_channel)  # type: ignore[no-untyped-call]
            orders = order_pb2_grpc.OrderServiceStub(order_channel)  # type: ignore[no-untyped-call]
            email = f"bench-{secrets.token_hex(6)}@example.com"
            await users.Register(user_pb2.RegisterRequest(email=email, password="correct horse", name="B"))
            login = await users.Login(user_pb2.LoginRequest(email=email, password="correct horse"))
            metadata = (("authorization", f"Bearer {login.access_token}"),)
            item = order_pb2.OrderItem(sku="BOOK-1", quantity=2, unit_price_cents=1250)
            first = None
            for n in range(25):  # more than a page, so ListOrders returns a full 20
                created = await orders.CreateOrder(
                    order_pb2.CreateOrderRequest(request_id=f"seed-{n}", items=[item]), metadata=metadata
                )
                first = first or created.order.id
            sequence = iter(range(10**9))
            me, get_order = user_pb2.MeRequest(), order_pb2.GetOrderRequest(order_id=first)
            list_orders = order_pb2.ListOrdersRequest(page_size=20)

            async def call() -> None:
                if rpc == "Me":
                    await users.Me(me, metadata=metadata)
                elif rpc == "GetOrder":
                    await orders.GetOrder(get_order, metadata=metadata)
                elif rpc == "ListOrders":
                    await orders.ListOrders(list_orders, metadata=metadata)
                else:
                    request_id = f"c-{next(sequence)}-{secrets.token_hex(4)}"
                    await orders.CreateOrder(
                        order_pb2.CreateOrderRequest(request_id=request_id, items=[item]), metadata=metadata
                    )

        latencies: list[float] = []
        errors = 0
        measuring = False
        loop = asyncio.get_running_loop()
        end = loop.time() + warmup + seconds

        async def worker() -> None:
            nonlocal errors
            while (now := loop.time()) < end:
                try:
                    await call()
                except grpc.aio.AioRpcError:
                    errors += measuring
                if measuring:
                    latencies.append(loop.time() - now)

        async def switch() -> None:
            nonlocal measuring
            await asyncio.sleep(warmup)
            measuring = True
            print("measuring", flush=True)

        started = loop.time() + warmup
        await asyncio.gather(switch(), *(worker() for _ in range(in_flight)))
        elapsed = loop.time() - started
    latencies.sort()
    return {
        "calls": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
    }


# ---------------------------------------------------------------------------------------------
# Measuring


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS


@dataclass
class Window:
    rpc: str
    config: str
    calls_per_s: float
    cpu_us_per_call: float
    p99_ms: float
    errors: int
    noise_cores: float


def measure(
    target: dict[str, str], rpc: str, config: str, server_pids: Sequence[int], args: argparse.Namespace
) -> Window:
    client = subprocess.Popen(
        [
            sys.executable,
            SCRIPT,
            "--drive",
            json.dumps(target),
            rpc,
            str(args.warmup),
            str(args.seconds),
            str(args.in_flight),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None
    if client.stdout.readline().strip() != "measuring":
        client.wait()
        raise SystemExit(f"the client for {config} {rpc} failed (exit code {client.returncode})")
    servers_before = sum(cpu_seconds(pid) for pid in server_pids)
    client_before = cpu_seconds(client.pid)
    busy_before = machine_busy_seconds()
    result = json.loads(client.stdout.readline())
    client_after = cpu_seconds(client.pid)  # still running: it prints before it exits
    servers = sum(cpu_seconds(pid) for pid in server_pids) - servers_before
    busy = machine_busy_seconds() - busy_before
    client.wait()
    noise = max(0.0, busy - servers - (client_after - client_before)) / result["seconds"]
    calls = max(result["calls"], 1)
    return Window(
        rpc,
        config,
        result["calls"] / result["seconds"],
        servers / calls * 1e6,
        result["p99_ms"],
        result["errors"],
        noise,
    )


@contextlib.contextmanager
def echo_server(work: Path) -> Iterator[tuple[str, int]]:
    port_file = work / "echo.port"
    proc = subprocess.Popen([sys.executable, SCRIPT, "--serve-echo", str(port_file)])
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the echo server did not start")
            time.sleep(0.05)
        yield f"127.0.0.1:{port_file.read_text()}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def handler_servers(work: Path, env: dict[str, str], ports: Sequence[ServicePorts]) -> Iterator[list[int]]:
    """userd and orderd handlers on bare servers, `ports` = (userd, orderd)."""
    userd_ports, orderd_ports = ports
    procs = []
    try:
        for service, own, extra in (
            ("userd", userd_ports, {}),
            ("orderd", orderd_ports, {"USERD_ADDR": userd_ports.grpc_addr}),
        ):
            procs.append(
                subprocess.Popen(
                    [sys.executable, SCRIPT, "--serve-handlers", service],
                    env={
                        **env,
                        "GRPC_ADDR": own.grpc_addr,
                        "METRICS_ADDR": f"127.0.0.1:{own.metrics}",
                        "DATABASE_URL": f"sqlite+aiosqlite:///{work / f'{service}-handlers.sqlite3'}",
                        **extra,
                    },
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            deadline = time.monotonic() + 30
            while not GrpcHealthProbe(own.grpc).check():
                if time.monotonic() > deadline or procs[-1].poll() is not None:
                    raise SystemExit(f"the bare {service} did not start")
                time.sleep(0.1)
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=15)


def report(windows: list[Window], rounds: int, rpcs: Sequence[str], args: argparse.Namespace) -> None:
    def median(config: str, rpc: str, value: str) -> float:
        return float(
            statistics.median(getattr(w, value) for w in windows if w.config == config and w.rpc == rpc)
        )

    def ratio(config: str, rpc: str, value: str) -> float:
        """Median over rounds of this window's value / the same round's echo value."""
        per_round = [w for w in windows if w.config == config and w.rpc == rpc]
        echoes = [w for w in windows if w.config == "echo"]
        return float(
            statistics.median(
                getattr(w, value) / getattr(e, value) for w, e in zip(per_round, echoes, strict=True)
            )
        )

    print(
        f"\n{rounds} rounds, {args.in_flight} calls in flight, {args.seconds:g} s windows after "
        f"{args.warmup:g} s warm-up; medians over rounds, ratios within each round\n"
    )
    header = f"{'RPC':<12} {'served by':<10} {'calls/s':>9} {'x echo':>7} {'CPU/call':>10} {'x echo':>7} {'p99':>9}"
    print(header)
    print("-" * len(header))
    rows = [("echo", "echo"), *((rpc, config) for config in ("services", "handlers") for rpc in rpcs)]
    for rpc, config in rows:
        print(
            f"{rpc:<12} {config:<10} {median(config, rpc, 'calls_per_s'):>9.0f} "
            f"{ratio(config, rpc, 'calls_per_s'):>7.2f} {median(config, rpc, 'cpu_us_per_call'):>7.0f} us "
            f"{ratio(config, rpc, 'cpu_us_per_call'):>7.1f} {median(config, rpc, 'p99_ms'):>6.1f} ms"
        )
    errors = sum(w.errors for w in windows)
    print(f"\nerrors: {errors}")
    noisy = [w for w in windows if w.noise_cores > args.noise_limit]
    for w in noisy:
        print(
            f"warning: other processes used {w.noise_cores:.2f} of a core during {w.config} {w.rpc}: "
            "that window is disturbed"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve-echo", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-handlers", choices=["userd", "orderd"], help=argparse.SUPPRESS)
    parser.add_argument("--drive", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per target")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--rpcs", default=",".join(RPCS), help="comma-separated subset of " + ",".join(RPCS))
    parser.add_argument(
        "--services-bin",
        type=Path,
        help="run the services from this venv's bin folder (another checkout, for a before/after)",
    )
    parser.add_argument(
        "--noise-limit", type=float, default=0.15, help="cores of other load that flag a window"
    )
    args = parser.parse_args(argv)
    if args.serve_echo:
        asyncio.run(serve_echo(args.serve_echo))
        return 0
    if args.serve_handlers:
        asyncio.run(serve_handlers(args.serve_handlers))
        return 0
    if args.drive:
        target, rpc, warmup, seconds, in_flight = args.drive
        result = asyncio.run(drive(json.loads(target), rpc, float(warmup), float(seconds), int(in_flight)))
        print(json.dumps(result), flush=True)
        return 0

    rpcs = [rpc for rpc in args.rpcs.split(",") if rpc]
    work = Path(tempfile.mkdtemp(prefix="bench-rpc-"))
    env = {
        **os.environ,
        "JWT_SECRET": secrets.token_hex(32),
        "FAULT_INJECTION_TOKEN": secrets.token_hex(16),
    }
    settings = services_settings(work)
    if args.services_bin:
        settings = dataclasses.replace(
            settings, binaries=dataclasses.replace(settings.binaries, venv_bin=args.services_bin)
        )
    handler_ports = [ServicePorts(free_port(), free_port()), ServicePorts(free_port(), free_port())]
    windows: list[Window] = []
    with (
        echo_server(work) as (echo_target, echo_pid),
        running(service_components(settings), settings.run_dir, env) as supervisor,
        handler_servers(work, env, handler_ports) as handler_pids,
    ):
        userd_pid = supervisor.pid("userd")
        orderd_pid = supervisor.pid("orderd")
        configs = {
            "services": (
                {"userd": settings.ports.userd[0].grpc_addr, "orderd": settings.ports.orderd.grpc_addr},
                {"userd": [userd_pid], "orderd": [userd_pid, orderd_pid]},
            ),
            "handlers": (
                {"userd": handler_ports[0].grpc_addr, "orderd": handler_ports[1].grpc_addr},
                {"userd": handler_pids[:1], "orderd": handler_pids},
            ),
        }
        for round_ in range(args.rounds):
            print(f"round {round_ + 1} of {args.rounds} …", flush=True)
            windows.append(measure({"echo": echo_target}, "echo", "echo", [echo_pid], args))
            for config, (target, pids) in configs.items():
                for rpc in rpcs:
                    server_pids = pids["userd"] if rpc == "Me" else pids["orderd"]
                    windows.append(measure(target, rpc, config, server_pids, args))
    report(windows, args.rounds, rpcs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
