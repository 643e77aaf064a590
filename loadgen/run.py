"""One load generator run, start to end: metrics, channels, user pool, faults, schedule, summary."""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import grpc
from grpcdemo.genproto.order.v1 import order_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2_grpc
from grpcdemo.runtime.channels import balanced_channel
from prometheus_client import CollectorRegistry

from loadgen.accounts import pool_size
from loadgen.actions import Actions, OrderMemory
from loadgen.arrivals import Arrival, plan
from loadgen.config import LoadgenConfig
from loadgen.fault_switch import FaultSwitch
from loadgen.kinds import Rpc, rpc_of
from loadgen.metrics import LoadgenMetrics, observability, serve_metrics
from loadgen.pool import SessionUnavailable, SetupError, SetupReport, UserPool
from loadgen.progress import Progress, Snapshot
from loadgen.report import Summary, format_table, rpc_summaries, write_json
from loadgen.scenarios import SCENARIOS, Scenario
from loadgen.scheduler import Execute, OpenLoopScheduler
from loadgen.stats import Recorder


@dataclass
class RunResult:
    summary: Summary
    setup: SetupReport
    recorder: Recorder
    memory: OrderMemory
    registry: CollectorRegistry
    metrics_port: int | None


class _Observer:
    """Every finished call goes to the run's statistics and to the Prometheus metrics."""

    def __init__(self, recorder: Recorder, metrics: LoadgenMetrics) -> None:
        self._recorder = recorder
        self._metrics = metrics

    def call(self, rpc: Rpc, code: grpc.StatusCode, seconds: float, *, expected: bool) -> None:
        self._recorder.record(rpc, code, seconds, expected=expected)
        self._metrics.observe(rpc, code, seconds)

    def refresh_login(self, rpc: Rpc, code: grpc.StatusCode, seconds: float) -> None:
        self.call(rpc, code, seconds, expected=code == grpc.StatusCode.OK)

    def drop(self, _: Arrival) -> None:
        self._recorder.record_drop()
        self._metrics.dropped.inc()


def _executor(actions: Actions, observer: _Observer) -> Execute:
    async def execute(arrival: Arrival, due: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            outcome = await actions.run(arrival.action, random.Random(arrival.seed))
        except SessionUnavailable:
            return  # the failed token refresh was recorded as a Login
        except asyncio.CancelledError:
            observer.call(
                rpc_of(arrival.action), grpc.StatusCode.CANCELLED, loop.time() - due, expected=False
            )
            raise
        observer.call(outcome.rpc, outcome.code, loop.time() - due, expected=outcome.expected)

    return execute


async def run(
    config: LoadgenConfig,
    *,
    stop: asyncio.Event | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    scenario: Scenario | None = None,
) -> RunResult:
    """Runs until `config.duration` passes or `stop` is set. `scenario` overrides the one named in
    the config (tests use it for mixes of their own)."""
    stop = stop or asyncio.Event()
    scenario = scenario or SCENARIOS[config.scenario]
    seed = config.seed if config.seed is not None else secrets.randbits(32)
    registry = CollectorRegistry()
    metrics = LoadgenMetrics(registry, scenario.name)
    recorder = Recorder()
    observer = _Observer(recorder, metrics)
    obs = observability(registry)
    profile = scenario.profile(config.rps, config.spike)
    # Set before the metrics port opens, so a scrape during the user-pool setup (seconds against a
    # real bcrypt cost) sees the rate the run is about to aim for, not 0; once the scheduler exists
    # the gauge follows the profile over the run's elapsed time instead.
    metrics.target_rps.set_function(lambda: profile.rate_at(0.0))
    try:
        metrics_port = serve_metrics(obs, config.metrics_addr)
    except (OSError, ValueError) as error:
        obs.close()
        raise SetupError(
            f"cannot serve metrics on {config.metrics_addr!r} ({error}); --metrics-addr 0 turns them off"
        ) from None
    # Balanced over every replica each name resolves to (compose's DNS, a headless Service), like
    # orderd's channel to userd; one address natively.
    user_channel = balanced_channel(config.target_userd, obs.client_interceptors())
    order_channel = balanced_channel(config.target_orderd, obs.client_interceptors())
    try:
        users = user_pb2_grpc.UserServiceStub(user_channel)  # type: ignore[no-untyped-call]
        orders = order_pb2_grpc.OrderServiceStub(order_channel)  # type: ignore[no-untyped-call]
        pool = UserPool(users, timeout=config.timeout, observe=observer.refresh_login)
        accounts = pool_size(config.users, config.rps)
        err.write(f"loadgen: preparing {accounts} users (file {config.pool_file})\n")
        try:
            setup = await pool.prepare(accounts, config.pool_file)
        except SetupError as error:
            raise SetupError(f"{error} (userd at {config.target_userd})") from None
        err.write(
            f"loadgen: users ready: {setup.logged_in} logged in, {setup.registered} registered, "
            f"{setup.replaced} replaced\n"
        )
        memory = OrderMemory()
        actions = Actions(users, orders, pool, memory, timeout=config.timeout)
        await actions.prime_memory()

        scheduler = OpenLoopScheduler(
            _executor(actions, observer),
            max_in_flight=config.max_in_flight,
            on_drop=observer.drop,
        )
        metrics.in_flight.set_function(lambda: scheduler.in_flight)
        metrics.target_rps.set_function(lambda: profile.rate_at(scheduler.elapsed()))

        def snapshot() -> Snapshot:
            return Snapshot(
                scheduler.elapsed(),
                profile.rate_at(scheduler.elapsed()),
                scheduler.in_flight,
                recorder.dropped,
            )

        switch = FaultSwitch(
            scenario.faults,
            {"userd": config.userd_admin, "orderd": config.orderd_admin},
            config.fault_token,
            err,
        )
        metrics_note = f", metrics on :{metrics_port}" if metrics_port else ""
        err.write(
            f"loadgen: scenario {scenario.name}, {config.rps:g}/s {config.arrivals}, seed {seed}, "
            f"max in flight {config.max_in_flight}{metrics_note}\n"
        )
        progress = Progress(recorder, snapshot, err, interval=config.progress_interval)
        arrivals = plan(scenario.mix, profile, seed, config.arrivals)
        elapsed, cancelled = await _drive(scheduler, arrivals, switch, progress, config, stop, err)
        await actions.settle()
        rows, total = rpc_summaries(recorder, elapsed)
        summary = Summary(
            scenario=scenario.name,
            seed=seed,
            arrivals=config.arrivals,
            target_rps=config.rps,
            duration_s=round(elapsed, 3),
            sent=scheduler.counts.started,
            dropped=scheduler.counts.dropped,
            cancelled=cancelled,
            achieved_rps=round(scheduler.counts.started / elapsed, 3) if elapsed > 0 else 0.0,
            unexpected=recorder.unexpected,
            rpcs=rows,
            total=total,
            created_orders=memory.created,
            idempotent_replays_matched=memory.replays_matched,
            idempotent_replays_mismatched=memory.replays_mismatched,
        )
        out.write(format_table(summary) + "\n")
        if config.json_path is not None:
            write_json(summary, config.json_path)
        return RunResult(summary, setup, recorder, memory, registry, metrics_port)
    finally:
        await user_channel.close()
        await order_channel.close()
        obs.close()


async def _drive(
    scheduler: OpenLoopScheduler,
    arrivals: Iterator[Arrival],
    switch: FaultSwitch,
    progress: Progress,
    config: LoadgenConfig,
    stop: asyncio.Event,
    err: TextIO,
) -> tuple[float, int]:
    """Faults on, schedule until the end, wait for answers, faults off (whatever ends the run).
    Returns the seconds spent scheduling and how many calls were cancelled at the end."""
    follow: asyncio.Task[None] | None = None
    try:
        await switch.switch_on()
        if switch.applied:
            follow = asyncio.create_task(switch.follow())
        progress.start()
        elapsed = await scheduler.run(arrivals, duration=config.duration, stop=stop)
        if scheduler.in_flight:
            err.write(
                f"\nloadgen: waiting up to {config.shutdown_grace:g}s for {scheduler.in_flight} answers\n"
            )
        cancelled = await scheduler.drain(config.shutdown_grace)
    finally:
        await progress.stop()
        if follow is not None:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
        await switch.switch_off()
    return elapsed, cancelled
