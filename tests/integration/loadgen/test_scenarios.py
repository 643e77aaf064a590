"""Each scenario produces the business results and status codes it is meant to, and scenarios that
inject faults switch them off at the end."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from grpcdemo.faults import FaultState

from loadgen.kinds import Action, Rpc
from loadgen.run import RunResult, run
from loadgen.scenarios import SpikeSettings
from tests.integration.loadgen.harness import LoadgenStack, loadgen_stack, planned_actions

ORDERD_RPCS = (Rpc.CREATE_ORDER, Rpc.GET_ORDER, Rpc.LIST_ORDERS)
SERVER_FAULTS = {"Unknown", "Internal", "Unavailable", "DataLoss", "DeadlineExceeded", "ResourceExhausted"}
TOKEN = "drill-token-" + "x" * 20


async def scenario_run(
    stack: LoadgenStack, tmp_path: Path, scenario: str, **changes: object
) -> tuple[RunResult, str]:
    err = io.StringIO()
    result = await run(stack.config(tmp_path, scenario=scenario, **changes), out=io.StringIO(), err=err)
    assert result.summary.dropped == 0
    return result, err.getvalue()


def codes(result: RunResult, *rpcs: Rpc) -> dict[str, int]:
    merged: dict[str, int] = {}
    for rpc in rpcs:
        stats = result.recorder.by_rpc.get(rpc)
        for code, count in stats.codes.items() if stats else ():
            merged[code] = merged.get(code, 0) + count
    return merged


def assert_faults_cleared(stack: LoadgenStack) -> None:
    for name, faults in (("userd", stack.userd_faults), ("orderd", stack.orderd_faults)):
        assert faults.state == FaultState(), name
        for kind in ("latency", "error"):
            value = (stack.userd if name == "userd" else stack.orderd).registry.get_sample_value(
                f"{name}_fault_injection_active", {"kind": kind}
            )
            assert value == 0, (name, kind)


async def test_bruteforce_fires_invalid_logins(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        result, _ = await scenario_run(stack, tmp_path, "bruteforce", rps=30, duration=2)
        planned = planned_actions(stack.config(tmp_path, scenario="bruteforce", rps=30, duration=2))
        # Guesses at a few accounts: checked until the throttle closes an account, refused by it
        # afterwards; both answer UNAUTHENTICATED and both count for InvalidLoginSpike.
        assert planned[Action.LOGIN_GUESS] > 3
        invalid = stack.userd_value("userd_service_login_handler_total", result="invalid_password")
        throttled = stack.userd_value("userd_service_login_handler_total", result="throttled")
        assert throttled > 0
        assert invalid + throttled == planned[Action.LOGIN_GUESS] + planned[Action.LOGIN_WRONG_PASSWORD]
        assert result.summary.unexpected == 0


async def test_steady_wrong_passwords_are_spread_and_never_throttled(tmp_path: Path) -> None:
    """The steady mix's wrong passwords are ordinary typos: spread over the pool, none throttled."""
    async with loadgen_stack(tmp_path) as stack:
        await scenario_run(stack, tmp_path, "steady", rps=100, duration=2)
        planned = planned_actions(stack.config(tmp_path, scenario="steady", rps=100, duration=2))
        invalid = stack.userd_value("userd_service_login_handler_total", result="invalid_password")
        assert invalid == planned[Action.LOGIN_WRONG_PASSWORD]
        assert stack.userd_value("userd_service_login_handler_total", result="throttled") == 0


async def test_bad_requests_are_invalid_input_not_server_errors(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        result, _ = await scenario_run(stack, tmp_path, "bad-requests", rps=40, duration=2)
        planned = planned_actions(stack.config(tmp_path, scenario="bad-requests", rps=40, duration=2))
        malformed = (Action.CREATE_ORDER_INVALID, Action.LOGIN_INVALID_EMAIL, Action.REGISTER_INVALID)
        # About a third of the arrivals are malformed.
        assert sum(planned[a] for a in malformed) > sum(planned.values()) / 5
        assert (
            stack.orderd_value("orderd_service_total_orders_total", result="invalid_input")
            == planned[Action.CREATE_ORDER_INVALID]
        )
        assert (
            stack.userd_value("userd_service_login_handler_total", result="invalid_input")
            == planned[Action.LOGIN_INVALID_EMAIL]
        )
        assert (
            stack.userd_value("userd_service_register_handler_total", result="invalid_input")
            == planned[Action.REGISTER_INVALID]
        )
        assert codes(result, *Rpc)["InvalidArgument"] == sum(planned[a] for a in malformed)
        assert not set(codes(result, *Rpc)) & SERVER_FAULTS
        assert result.summary.unexpected == 0


async def test_outage_fails_orders_through_userd_and_then_recovers(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        result, err = await scenario_run(stack, tmp_path, "outage", rps=40, duration=2)
        assert "faults on in userd" in err
        assert "faults off in userd" in err
        # OrderCreationFailing: orders reached the business logic and failed.
        assert stack.orderd_value("orderd_service_total_orders_total", result="failed") >= 5
        assert stack.orderd_value("orderd_service_total_orders_total", result="success") == 0
        assert set(codes(result, *ORDERD_RPCS)) <= {"Unavailable", "Unauthenticated", "InvalidArgument"}
        assert codes(result, *ORDERD_RPCS)["Unavailable"] >= 10
        assert codes(result, Rpc.ME)["Unavailable"] >= 5
        # HighGRPCFailures: orderd's client calls to userd.Me ended Unavailable.
        failed_hops = stack.orderd.registry.get_sample_value(
            "grpc_client_handled_total",
            {
                "grpc_type": "unary",
                "grpc_service": "user.v1.UserService",
                "grpc_method": "Me",
                "grpc_code": "Unavailable",
            },
        )
        assert failed_hops is not None
        assert failed_hops >= 10
        assert_faults_cleared(stack)


async def test_slow_adds_latency_to_orderd_only(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        result, _ = await scenario_run(stack, tmp_path, "slow", rps=20, duration=2)
        for rpc in ORDERD_RPCS:
            row = next(r for r in result.summary.rpcs if r.rpc == rpc.value)
            assert row.p50_ms >= 600, row
        # userd is not slowed down (generous: other work on a shared machine adds latency too).
        me = next(r for r in result.summary.rpcs if r.rpc == "Me")
        assert me.p50_ms < 600
        # GRPCLatencyP95High reads the server histogram: the injected delay is in it.
        slow_bucket = stack.orderd.registry.get_sample_value(
            "grpc_server_handling_seconds_bucket",
            {
                "grpc_type": "unary",
                "grpc_service": "order.v1.OrderService",
                "grpc_method": "CreateOrder",
                "le": "0.5",
            },
        )
        total = stack.orderd.registry.get_sample_value(
            "grpc_server_handling_seconds_count",
            {"grpc_type": "unary", "grpc_service": "order.v1.OrderService", "grpc_method": "CreateOrder"},
        )
        assert total
        assert slow_bucket == 0
        assert result.summary.unexpected == 0
        assert_faults_cleared(stack)


async def test_errors_injects_internal_on_a_fifth_of_orderd_calls(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        result, _ = await scenario_run(stack, tmp_path, "errors", rps=60, duration=2.5)
        seen = codes(result, *ORDERD_RPCS)
        calls = sum(seen.values())
        assert calls >= 60
        # 20 % injected; 4 standard deviations of a binomial share over this many calls.
        share = seen.get("Internal", 0) / calls
        assert abs(share - 0.2) < 4 * (0.2 * 0.8 / calls) ** 0.5, seen
        assert "Internal" not in codes(result, Rpc.ME, Rpc.LOGIN, Rpc.REGISTER)
        internal_on_server = sum(
            stack.orderd.registry.get_sample_value(
                "grpc_server_handled_total",
                {
                    "grpc_type": "unary",
                    "grpc_service": "order.v1.OrderService",
                    "grpc_method": m,
                    "grpc_code": "Internal",
                },
            )
            or 0
            for m in ("CreateOrder", "GetOrder", "ListOrders")
        )
        assert internal_on_server == seen["Internal"]
        assert_faults_cleared(stack)


async def test_spike_multiplies_the_rate_for_a_while(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path) as stack:
        changes: dict[str, object] = {
            "rps": 15,
            "duration": 3,
            "arrivals": "constant",
            "spike": SpikeSettings(5, 1, 1),
        }
        result, _ = await scenario_run(stack, tmp_path, "spike", **changes)
        # 15/s for 2 s plus 75/s for 1 s, every one of them sent.
        planned = sum(planned_actions(stack.config(tmp_path, scenario="spike", **changes)).values())
        assert planned == pytest.approx(15 * 2 + 75, abs=2)
        assert result.summary.sent == planned
        assert result.summary.unexpected == 0


async def test_refused_faults_print_what_to_do_and_the_run_goes_on(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path, admin_enabled=False) as stack:
        result, err = await scenario_run(stack, tmp_path, "outage", rps=20, duration=1)
        assert "could not switch faults on in userd" in err
        assert "FAULT_INJECTION_ENABLED=true" in err
        assert "stop userd" in err
        assert result.summary.sent > 0
        assert result.summary.unexpected == 0


async def test_fault_token_is_sent(tmp_path: Path) -> None:
    async with loadgen_stack(tmp_path, admin_token=TOKEN) as stack:
        _, refused = await scenario_run(stack, tmp_path, "errors", rps=20, duration=0.5)
        assert "HTTP 401" in refused
        result, err = await scenario_run(stack, tmp_path, "errors", rps=40, duration=1.5, fault_token=TOKEN)
        assert "faults on in orderd" in err
        assert codes(result, *ORDERD_RPCS).get("Internal", 0) > 0
        assert TOKEN not in err
        assert_faults_cleared(stack)
