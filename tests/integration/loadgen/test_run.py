"""Whole runs against the in-process services: what the generator sends is what the services count."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpcdemo.faults import FaultState
from grpcdemo.genproto.order.v1 import order_pb2, order_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from loadgen.accounts import pool_size
from loadgen.kinds import CATALOG, Action, Rpc
from loadgen.mix import Mix
from loadgen.pool import load_accounts
from loadgen.run import RunResult, run
from loadgen.scenarios import Scenario
from tests.integration.loadgen.harness import LoadgenStack, loadgen_stack
from tests.support.observability_echo import Scrape, http_get
from tests.support.processes import ROOT, free_port


async def quiet_run(
    stack: LoadgenStack, tmp_path: Path, scenario: Scenario | None = None, **changes: object
) -> RunResult:
    return await run(
        stack.config(tmp_path, **changes), out=io.StringIO(), err=io.StringIO(), scenario=scenario
    )


def codes(result: RunResult, rpc: Rpc) -> dict[str, int]:
    return dict(result.recorder.by_rpc[rpc].codes) if rpc in result.recorder.by_rpc else {}


async def test_every_action_gets_its_status_and_business_result(tmp_path: Path) -> None:
    everything = Scenario("all", "every action equally often", Mix(dict.fromkeys(Action, 1.0)))
    async with loadgen_stack(tmp_path) as stack:
        result = await quiet_run(stack, tmp_path, everything, rps=90, duration=2, arrivals="constant")
        assert result.summary.unexpected == 0, result.summary.total.codes
        assert result.summary.dropped == 0
        for action, (_, _, (counter, business_result)) in CATALOG.items():
            if counter.startswith("userd_"):
                value = stack.userd_value(counter, result=business_result)
            else:
                value = stack.orderd_value(counter, result=business_result)
            assert value >= 1, f"{action}: {counter}{{result={business_result!r}}} is {value}"
        assert stack.orderd_value("orderd_service_idempotent_replays_total") >= 1


async def test_steady_run_summary_json_and_pool_reuse(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        summary_path = tmp_path / "out" / "summary.json"
        first = await quiet_run(stack, tmp_path, rps=40, duration=2, json_path=summary_path)
        summary = first.summary
        # --users is a floor: at 40/s the pool holds 80 accounts (loadgen/accounts.py).
        accounts = pool_size(stack.config(tmp_path).users, 40)
        assert accounts == 80
        assert (first.setup.registered, first.setup.logged_in) == (accounts, accounts)
        assert summary.scenario == "steady"
        assert summary.unexpected == 0, summary.total.codes
        assert summary.dropped == 0
        # A Poisson count over 2 s at 40/s: what this seed planned, give or take scheduling.
        assert 55 <= summary.sent <= 105
        assert summary.total.count == summary.sent
        assert summary.duration_s == pytest.approx(2, abs=0.5)

        data = json.loads(summary_path.read_text())
        assert data["sent"] == summary.sent
        assert data["total"]["codes"] == summary.total.codes
        assert {row["rpc"] for row in data["rpcs"]} <= {rpc.value for rpc in Rpc}
        assert sum(row["count"] for row in data["rpcs"]) == data["total"]["count"]

        # The generator's own counters agree with its summary.
        registry = first.registry
        assert registry.get_sample_value("loadgen_scenario_info", {"scenario": "steady"}) == 1
        counted = sum(
            registry.get_sample_value("loadgen_requests_total", {"rpc": row.rpc, "code": code}) or 0
            for row in summary.rpcs
            for code in row.codes
        )
        assert counted == summary.total.count
        assert registry.get_sample_value("loadgen_requests_dropped_total") == 0

        # The services saw the same calls: every Me the generator sent was counted by userd.
        me_calls = sum(codes(first, Rpc.ME).values())
        me_counted = sum(
            stack.userd_value("userd_service_me_handler_total", result=r)
            for r in ("success", "invalid_token", "missing_token", "user_not_found")
        )
        # orderd calls Me for each order call too: userd counts at least the generator's own.
        assert me_counted >= me_calls

        registered_before = stack.userd_value("userd_service_register_handler_total", result="success")
        accounts_before = load_accounts(tmp_path / "loadgen-users.json")
        second = await quiet_run(stack, tmp_path, rps=40, duration=1, seed=8)
        assert (second.setup.registered, second.setup.logged_in) == (0, accounts)
        registered_now = stack.userd_value("userd_service_register_handler_total", result="success")
        # Only sign-ups from the mix itself (the `register` action), none for the pool.
        assert registered_now - registered_before == codes(second, Rpc.REGISTER).get("OK", 0)
        assert load_accounts(tmp_path / "loadgen-users.json") == accounts_before


async def test_idempotent_retries_create_no_duplicates(tmp_path: Path) -> None:
    creating = Scenario(
        "retries", "creations and retries", Mix({Action.CREATE_ORDER: 1, Action.RETRY_CREATE_ORDER: 1})
    )
    async with loadgen_stack(tmp_path) as stack:
        result = await quiet_run(stack, tmp_path, creating, rps=60, duration=2)
        memory = result.memory
        assert result.summary.unexpected == 0
        assert memory.created >= 30
        assert memory.replays_matched >= 30
        assert memory.replays_mismatched == 0
        assert stack.orderd_value("orderd_service_idempotent_replays_total") == memory.replays_matched

        stored = 0
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{stack.userd.port}") as user_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{stack.orderd.port}") as order_channel,
        ):
            users = user_pb2_grpc.UserServiceStub(user_channel)
            orders = order_pb2_grpc.OrderServiceStub(order_channel)
            for account in load_accounts(tmp_path / "loadgen-users.json"):
                login = await users.Login(
                    user_pb2.LoginRequest(email=account.email, password=account.password)
                )
                metadata = (("authorization", f"Bearer {login.access_token}"),)
                token = ""
                while True:
                    page = await orders.ListOrders(
                        order_pb2.ListOrdersRequest(page_size=100, page_token=token), metadata=metadata
                    )
                    stored += len(page.orders)
                    token = page.next_page_token
                    if not token:
                        break
        assert stored == memory.created


async def test_tokens_are_refreshed_when_they_expire(tmp_path: Path) -> None:
    me_only = Scenario("me", "Me only", Mix({Action.ME: 1}))
    async with loadgen_stack(tmp_path, userd_extra={"JWT_TTL_SECONDS": "3"}) as stack:
        logins_before = stack.userd_value("userd_service_login_handler_total", result="success")
        result = await quiet_run(stack, tmp_path, me_only, rps=30, duration=4)
        me = codes(result, Rpc.ME)
        # Without refreshes every Me after the first 3 s would be refused. A refresh happens a tenth
        # of the lifetime (0.2-0.3 s) early; a stall that long on a busy machine may cost one or two.
        assert sum(me.values()) == result.summary.sent >= 90
        assert me.get("Unauthenticated", 0) <= 2
        assert me.get("OK", 0) == result.summary.sent - me.get("Unauthenticated", 0)
        # Each of the 5 users logged in again at least once (tokens live 3 s).
        refreshes = codes(result, Rpc.LOGIN).get("OK", 0)
        assert refreshes >= 5
        assert (
            stack.userd_value("userd_service_login_handler_total", result="success") - logins_before
            >= 5 + refreshes
        )


def scrape_text(url: str) -> str:
    """The exposition text; empty while nothing answers yet."""
    try:
        return http_get(url)[2].decode()
    except OSError:
        return ""


def answered_me_calls(text: str) -> float:
    # Pre-initialised to 0 at start-up, so the series' presence alone proves nothing.
    return Scrape(text).value("loadgen_requests_total", code="OK", rpc="Me")


async def test_metrics_endpoint_while_running(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    async with loadgen_stack(tmp_path) as stack:
        task = asyncio.create_task(
            quiet_run(stack, tmp_path, rps=30, duration=2.5, metrics_addr=f"127.0.0.1:{port}")
        )
        # Scraped until an answered Me shows, however long the user-pool setup takes on a busy
        # machine: the run keeps the port open for its 2.5 s of scheduling after that.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        text = ""
        while answered_me_calls(text) == 0:
            assert not task.done(), f"the run ended before a scrape saw an answered Me:\n{text}"
            assert loop.time() < deadline, f"no answered Me within 15 s:\n{text}"
            await asyncio.sleep(0.1)
            text = await asyncio.to_thread(scrape_text, url)
        result = await asyncio.wait_for(task, 20)
    assert result.metrics_port == port
    assert 'loadgen_scenario_info{scenario="steady"} 1.0' in text
    assert 'loadgen_requests_total{code="OK",rpc="Me"}' in text
    assert "loadgen_requests_dropped_total 0.0" in text
    assert "loadgen_target_requests_per_second 30.0" in text
    assert "loadgen_request_latency_seconds_bucket" in text
    if "grpc_client_handled_total" not in text:
        pytest.fail("the shared client interceptors are installed but no grpc_client_* series were exported")
    assert 'grpc_method="Me"' in text
    # Stopped with the run.
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2))


async def eventually(check: Callable[[], bool], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, f"condition not met within {within}s"
        await asyncio.sleep(0.02)


ORDER_SERVICE = "order.v1.OrderService"


def orderd_calls(stack: LoadgenStack) -> float:
    return sum(
        stack.orderd_value(
            "grpc_server_started_total", grpc_type="unary", grpc_service=ORDER_SERVICE, grpc_method=m
        )
        for m in ("CreateOrder", "GetOrder", "ListOrders")
    )


async def test_stop_event_ends_the_run_and_clears_faults(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        stop = asyncio.Event()
        config = stack.config(tmp_path, scenario="outage", duration=None, rps=20)
        task = asyncio.create_task(run(config, stop=stop, out=io.StringIO(), err=io.StringIO()))
        await eventually(lambda: stack.userd_faults.state.error is not None, within=15)
        stop.set()
        result = await asyncio.wait_for(task, 10)
        assert stack.userd_faults.state == FaultState()
        assert result.summary.duration_s < 3


async def test_cli_ctrl_c_prints_the_summary_and_clears_faults(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        config = stack.config(tmp_path)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadgen",
            "--scenario=outage",
            # Low enough that the pool stays at 3 users (2 per request/s): priming their order memory
            # must not alone make the 5 orderd calls awaited below.
            "--rps=1.5",
            "--users=3",
            f"--pool-file={config.pool_file}",
            f"--target-userd={config.target_userd}",
            f"--target-orderd={config.target_orderd}",
            f"--userd-admin={config.userd_admin}",
            f"--orderd-admin={config.orderd_admin}",
            "--metrics-addr=0",
            f"--json={tmp_path / 'cli.json'}",
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            # The run has started (faults on) and sent traffic that orderd answered.
            await eventually(lambda: stack.userd_faults.state.error is not None, within=15)
            await eventually(lambda: orderd_calls(stack) >= 5, within=15)
            process.send_signal(signal.SIGINT)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, stderr.decode()
        assert "stopping" in stderr.decode()
        assert "faults off in userd" in stderr.decode()
        assert "total" in stdout.decode()
        assert stack.userd_faults.state == FaultState()
        data = json.loads((tmp_path / "cli.json").read_text())
        assert data["scenario"] == "outage"
        assert data["sent"] > 0
