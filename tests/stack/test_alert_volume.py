"""Alerts against traffic volume, in generated promtool tests: the steady mix's shape at 1x, 10x and
100x its default rate fires nothing; each fault or attack that an alert names fires it at low and at
high volume; a condition that hovers at a threshold is one firing, not a series.

The steady shape comes from the load generator's own default mix (loadgen/mix.py), so a change to
the mix is checked here too. Counters are written as explicit values every 30 s; the rules see them
as Prometheus would see scrapes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from loadgen.kinds import Action
from loadgen.mix import DEFAULT_WEIGHTS
from tests.stack.support import PROMETHEUS_DIR
from tests.support.login_model import GUESS_SHARE, LoginCounts, simulate_logins

pytestmark = pytest.mark.prometheus

STEP_SECONDS = 30
DEFAULT_RPS = 5.0  # LOADGEN_RPS's default in `make up`
SCALES = (1, 10, 100)

_WEIGHT_TOTAL = sum(DEFAULT_WEIGHTS.values())


def share(*actions: Action) -> float:
    return sum(DEFAULT_WEIGHTS[a] for a in actions) / _WEIGHT_TOTAL


# Per method of the steady mix: the share of arrivals, and how they end. Caller errors are part of the
# normal mix (bad tokens, unknown orders, wrong passwords) and must never page.
USERD_CALLS: dict[str, dict[str, float]] = {
    "Me": {"OK": share(Action.ME), "Unauthenticated": share(Action.ME_GARBAGE_TOKEN, Action.ME_NO_TOKEN)},
    "Login": {
        "OK": share(Action.LOGIN),
        "Unauthenticated": share(Action.LOGIN_WRONG_PASSWORD, Action.LOGIN_UNKNOWN_EMAIL),
        "InvalidArgument": share(Action.LOGIN_INVALID_EMAIL),
    },
    "Register": {
        "OK": share(Action.REGISTER),
        "AlreadyExists": share(Action.REGISTER_EXISTING),
        "InvalidArgument": share(Action.REGISTER_INVALID),
    },
}
ORDERD_CALLS: dict[str, dict[str, float]] = {
    "CreateOrder": {
        "OK": share(Action.CREATE_ORDER, Action.RETRY_CREATE_ORDER),
        "InvalidArgument": share(Action.CREATE_ORDER_INVALID),
        "Unauthenticated": share(Action.CREATE_ORDER_GARBAGE_TOKEN),
    },
    "GetOrder": {"OK": share(Action.GET_ORDER), "NotFound": share(Action.GET_ORDER_UNKNOWN)},
    "ListOrders": {
        "OK": share(Action.LIST_ORDERS),
        "Unauthenticated": share(Action.LIST_ORDERS_GARBAGE_TOKEN),
    },
}
# Logins that reach a password check (success, invalid_password, throttled) come from the login model
# (tests/support/login_model.py: userd's own throttle on the generator's own account choices); an
# unknown email is a new address every time, which the throttle never closes.
UNKNOWN_EMAIL_SHARE = share(Action.LOGIN_UNKNOWN_EMAIL)
CHECKED_RESULTS = ("success", "invalid_password", "throttled")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")


@dataclass
class Traffic:
    """Per-second rates of each counter series, as a function of the minute they are in."""

    minutes: int
    rates: dict[str, Callable[[float], float]] = field(default_factory=dict)

    def set(self, series: str, rate: Callable[[float], float]) -> None:
        self.rates[series] = rate

    def add(self, series: str, rate: Callable[[float], float]) -> None:
        previous = self.rates.get(series)
        if previous is None:
            self.rates[series] = rate
        else:
            self.rates[series] = lambda minute: previous(minute) + rate(minute)

    def input_series(self) -> list[dict[str, str]]:
        steps = self.minutes * 60 // STEP_SECONDS
        out = []
        for series, rate in sorted(self.rates.items()):
            value, values = 0.0, ["0"]
            for step in range(steps):
                value += rate(step * STEP_SECONDS / 60) * STEP_SECONDS
                values.append(f"{value:.3f}".rstrip("0").rstrip("."))
            out.append({"series": series, "values": " ".join(values)})
        # Both services are up and scraped throughout (ServiceDown also fires for a missing `up`).
        for job, port in (("userd", 9091), ("orderd", 9092)):
            out.append(
                {
                    "series": f'up{{job="{job}", instance="127.0.0.1:{port}", service="{job}"}}',
                    "values": f"1x{steps}",
                }
            )
        return out


def constant(per_second: float) -> Callable[[float], float]:
    return lambda _minute: per_second


def from_minute(start: float, per_second: float) -> Callable[[float], float]:
    return lambda minute: per_second if minute >= start else 0.0


def server(job: str, svc: str, method: str, code: str) -> str:
    return (
        f'grpc_server_handled_total{{job="{job}", service="{job}", instance="{job}:1", grpc_type="unary", '
        f'grpc_service="{svc}", grpc_method="{method}", grpc_code="{code}"}}'
    )


def bucket(job: str, svc: str, method: str, le: str) -> str:
    return (
        f'grpc_server_handling_seconds_bucket{{job="{job}", service="{job}", instance="{job}:1", '
        f'grpc_type="unary", grpc_service="{svc}", grpc_method="{method}", le="{le}"}}'
    )


def client(code: str) -> str:
    return (
        'grpc_client_handled_total{job="orderd", service="orderd", instance="orderd:1", grpc_type="unary", '
        f'grpc_service="user.v1.UserService", grpc_method="Me", grpc_code="{code}"}}'
    )


def login(result: str) -> str:
    return f'userd_service_login_handler_total{{job="userd", service="userd", instance="userd:1", result="{result}"}}'


def orders(result: str) -> str:
    return f'orderd_service_total_orders_total{{job="orderd", service="orderd", instance="orderd:1", result="{result}"}}'


def steady_under(le: str) -> float:
    """The steady share of calls answered within `le` seconds: 90% within 25 ms, all within 100 ms."""
    return 1.0 if float(le) >= 0.1 else 0.9 if float(le) >= 0.025 else 0.0


def steady(minutes: int, rps: float) -> Traffic:
    """The default mix at `rps`: latencies well under the alert line, no server fault anywhere."""
    traffic = Traffic(minutes)
    for job, svc, calls in (
        ("userd", "user.v1.UserService", USERD_CALLS),
        ("orderd", "order.v1.OrderService", ORDERD_CALLS),
    ):
        for method, codes in calls.items():
            total = sum(codes.values()) * rps
            for code, part in codes.items():
                traffic.add(server(job, svc, method, code), constant(part * rps))
            for le in BUCKETS:
                traffic.add(bucket(job, svc, method, le), constant(total * steady_under(le)))
    orderd_calls = sum(sum(codes.values()) for codes in ORDERD_CALLS.values()) * rps
    bad_tokens = sum(codes.get("Unauthenticated", 0) for codes in ORDERD_CALLS.values()) * rps
    traffic.add(client("OK"), constant(orderd_calls - bad_tokens))
    traffic.add(client("Unauthenticated"), constant(bad_tokens))
    traffic.add(login("user_not_found"), constant(UNKNOWN_EMAIL_SHARE * rps))
    set_logins(traffic, simulate_logins(rps, minutes * 60, step_seconds=STEP_SECONDS))
    traffic.add(orders("success"), constant(share(Action.CREATE_ORDER, Action.RETRY_CREATE_ORDER) * rps))
    traffic.add(orders("invalid_input"), constant(share(Action.CREATE_ORDER_INVALID) * rps))
    traffic.add(orders("failed"), constant(0))
    return traffic


# The faults, each as the load generator's scenario makes it (loadgen/scenarios.py), from FAULT_AT.
FAULT_AT = 10


def outage(traffic: Traffic, rps: float) -> None:
    """userd's Me answers UNAVAILABLE: orderd's authenticated calls fail, and so do orders."""
    authenticated = sum(codes["OK"] for codes in ORDERD_CALLS.values()) * rps
    traffic.add(client("OK"), from_minute(FAULT_AT, -authenticated))
    traffic.add(client("Unavailable"), from_minute(FAULT_AT, authenticated))
    created = share(Action.CREATE_ORDER, Action.RETRY_CREATE_ORDER) * rps
    traffic.add(orders("success"), from_minute(FAULT_AT, -created))
    traffic.add(orders("failed"), from_minute(FAULT_AT, created))
    for method, codes in ORDERD_CALLS.items():
        ok = codes["OK"] * rps
        traffic.add(server("orderd", "order.v1.OrderService", method, "OK"), from_minute(FAULT_AT, -ok))
        traffic.add(
            server("orderd", "order.v1.OrderService", method, "Unavailable"), from_minute(FAULT_AT, ok)
        )


def errors(traffic: Traffic, rps: float) -> None:
    """INTERNAL on 20% of orderd's calls."""
    for method, codes in ORDERD_CALLS.items():
        failing = 0.2 * sum(codes.values()) * rps
        traffic.add(server("orderd", "order.v1.OrderService", method, "OK"), from_minute(FAULT_AT, -failing))
        traffic.add(
            server("orderd", "order.v1.OrderService", method, "Internal"), from_minute(FAULT_AT, failing)
        )


def slow(traffic: Traffic, rps: float) -> None:
    """600-900 ms on every orderd method: every call leaves the buckets under 1 s."""
    for method, codes in ORDERD_CALLS.items():
        total = sum(codes.values()) * rps
        for le in BUCKETS:
            if float(le) < 1:
                moved = total * steady_under(le)
                traffic.add(
                    bucket("orderd", "order.v1.OrderService", method, le), from_minute(FAULT_AT, -moved)
                )


def set_logins(traffic: Traffic, counts: LoginCounts) -> None:
    for result in CHECKED_RESULTS:
        traffic.set(login(result), counts.rate(result))


def bruteforce(traffic: Traffic, rps: float) -> None:
    """The bruteforce scenario's share of guesses at a few accounts, from FAULT_AT, on top of the
    steady mix's typos: userd's throttle, simulated, decides which it checks and which it refuses (at
    low volume a slow attack stays mostly under it, at high volume it refuses most)."""
    counts = simulate_logins(
        rps,
        traffic.minutes * 60,
        step_seconds=STEP_SECONDS,
        guesses_per_second=GUESS_SHARE * rps,
        guesses_from=FAULT_AT * 60,
    )
    set_logins(traffic, counts)


@dataclass(frozen=True)
class Fault:
    alerts: tuple[str, ...]
    inject: Callable[[Traffic, float], None]
    fired_by: int  # minutes after FAULT_AT when every alert must be firing
    minutes: int = 30


FAULTS = {
    "outage": Fault(("HighGRPCFailures", "OrderCreationFailing", "GRPCServerErrorRateHigh"), outage, 5),
    "errors": Fault(("GRPCServerErrorRateHigh", "ErrorBudgetBurnFast"), errors, 8),
    "errors-for-long": Fault(("ErrorBudgetBurnSlow",), errors, 30, minutes=45),
    "slow": Fault(("GRPCLatencyP95High",), slow, 5),
    "bruteforce": Fault(("InvalidLoginSpike",), bruteforce, 3),
}


def firing(eval_minute: float, alerts: list[str]) -> dict[str, object]:
    test: dict[str, object] = {
        "expr": 'group by (alertname) (ALERTS{alertstate="firing", alertname!="Watchdog"})',
        "eval_time": f"{int(eval_minute * 60)}s",
        "exp_samples": [{"labels": f'{{alertname="{a}"}}', "value": 1} for a in alerts],
    }
    return test


def promtool_test(
    tmp_path: Path, promtool: str, name: str, traffic: Traffic, checks: list[dict[str, object]]
) -> None:
    document = {
        "rule_files": [
            str(PROMETHEUS_DIR / "rules" / "recording.yml"),
            str(PROMETHEUS_DIR / "rules" / "alerts.yml"),
        ],
        "evaluation_interval": "15s",
        "tests": [
            {
                "name": name,
                "interval": f"{STEP_SECONDS}s",
                "input_series": traffic.input_series(),
                "promql_expr_test": checks,
            }
        ],
    }
    path = tmp_path / "volume_test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=200))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("scale", SCALES, ids=[f"{s}x" for s in SCALES])
def test_the_steady_mix_fires_nothing_at_any_volume(promtool: str, tmp_path: Path, scale: int) -> None:
    minutes = 30
    checks = [firing(minute, []) for minute in range(2, minutes + 1, 2)]
    promtool_test(tmp_path, promtool, f"steady {scale}x", steady(minutes, DEFAULT_RPS * scale), checks)


@pytest.mark.parametrize("scale", [1, 100], ids=["low-volume", "high-volume"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_fires_its_alerts_at_low_and_high_volume(
    promtool: str, tmp_path: Path, fault: str, scale: int
) -> None:
    spec = FAULTS[fault]
    rps = DEFAULT_RPS * scale
    traffic = steady(spec.minutes, rps)
    spec.inject(traffic, rps)
    # Before the fault: nothing. After it has run its course: the fault's alerts, whatever else it
    # also sets off (an outage is a burn of the error budget too).
    alerts_at_end = (
        f'group by (alertname) (ALERTS{{alertstate="firing", alertname=~"{"|".join(spec.alerts)}"}})'
    )
    checks: list[dict[str, object]] = [
        firing(FAULT_AT - 0.5, []),
        {
            "expr": alerts_at_end,
            "eval_time": f"{(FAULT_AT + spec.fired_by) * 60}s",
            "exp_samples": [{"labels": f'{{alertname="{a}"}}', "value": 1} for a in sorted(spec.alerts)],
        },
    ]
    promtool_test(tmp_path, promtool, f"{fault} at {scale}x", traffic, checks)


def test_a_throttle_count_hovering_at_the_threshold_is_one_firing(promtool: str, tmp_path: Path) -> None:
    """Throttled logins alternate 3 and 1 a minute: the 5-minute count swings between 9 and 11 around
    InvalidLoginSpike's 10. Once it fires it stays firing until the attack stops (keep_firing_for),
    and it resolves after that."""
    minutes = 36
    traffic = steady(minutes, DEFAULT_RPS)
    traffic.add(
        login("throttled"),
        lambda minute: 0.0 if minute < FAULT_AT or minute >= 22 else (3 if int(minute) % 2 == 0 else 1) / 60,
    )
    hovering = [m / 2 for m in range(2 * (FAULT_AT + 6), 2 * 22)]
    alert = 'count(ALERTS{alertstate="firing", alertname="InvalidLoginSpike"})'
    checks: list[dict[str, object]] = [
        {"expr": alert, "eval_time": f"{int(m * 60)}s", "exp_samples": [{"labels": "{}", "value": 1}]}
        for m in hovering
    ]
    checks.append({"expr": alert, "eval_time": f"{minutes * 60}s", "exp_samples": []})
    promtool_test(tmp_path, promtool, "hovering throttle", traffic, checks)


@pytest.mark.parametrize("scale", SCALES, ids=[f"{s}x" for s in SCALES])
def test_the_steady_mix_never_trips_the_throttle_nor_refuses_a_right_password(scale: int) -> None:
    """What the steady test above feeds the rules, said plainly: typos spread over everyone who logs
    in, and the pool grows with the rate, so no account ever reaches the throttle's allowance."""
    rps = DEFAULT_RPS * scale
    counts = simulate_logins(rps, 30 * 60, step_seconds=STEP_SECONDS)
    busiest = max(counts.per_account_failures.values(), default=0)
    print(
        f"{scale}x ({rps:g}/s, {counts.accounts} accounts, 30 min): {counts.total('invalid_password')} typos, "
        f"at most {busiest} on one account; {counts.total('throttled')} refused"
    )
    assert counts.total("invalid_password") > 0
    assert counts.total("throttled") == 0
    assert counts.refused_right_passwords == 0
