"""Scenarios: a traffic mix, a rate profile and the faults to switch on, each aimed at alerts.

- steady: the default mix at the target rate; should fire nothing.
- spike: the default mix, the rate times --spike-factor (5) from --spike-start for --spike-length.
- bruteforce: adds wrong-password guesses at a few pool accounts (a fifth of arrivals, uncapped): the
  failed-login throttle refuses them past 5 per account in 30 s, and 10 refusals in 5 minutes fire
  InvalidLoginSpike. (The steady mix's wrong passwords are typos spread over everyone logging in,
  loadgen/accounts.py, which never trip the throttle.)
- bad-requests: adds malformed requests (INVALID_ARGUMENT) to about a third of arrivals: business
  invalid_input counters climb, and no server-error alert may fire.
- outage: userd's Me answers UNAVAILABLE (injected); orderd authenticates through it, so its calls
  fail: fires HighGRPCFailures and OrderCreationFailing.
- slow: 600-900 ms injected on every orderd method: fires GRPCLatencyP95High.
- slow-userd: 100-250 ms injected on userd's Me, on every replica: orderd's calls to userd slow down
  (its client latency and its own, per replica on the Replicas row); below every latency alert.
- errors: INTERNAL on 20 % of orderd calls: fires GRPCServerErrorRateHigh and the error-budget
  burn-rate alert.

Faults are switched on through the services' /admin/faults endpoint (FAULT_INJECTION_ENABLED=true)
and off again when the run ends, also on Ctrl-C.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from grpcdemo.genproto.order.v1 import order_pb2
from grpcdemo.genproto.user.v1 import user_pb2

from loadgen.arrivals import ConstantRate, RateProfile, SpikeRate
from loadgen.kinds import Action
from loadgen.mix import DEFAULT_MIX, DEFAULT_WEIGHTS, Mix

Service = Literal["userd", "orderd"]

_ORDER_SERVICE = order_pb2.DESCRIPTOR.services_by_name["OrderService"]
_USER_SERVICE = user_pb2.DESCRIPTOR.services_by_name["UserService"]
ORDERD_METHODS: Final = [f"/{_ORDER_SERVICE.full_name}/{m.name}" for m in _ORDER_SERVICE.methods]
USERD_ME: Final = f"/{_USER_SERVICE.full_name}/Me"


@dataclass(frozen=True)
class FaultPlan:
    service: Service
    spec: dict[str, Any]
    """The body PUT to /admin/faults (see grpcdemo.faults)."""
    manual: str
    """What to do by hand when the service has fault injection switched off."""


@dataclass(frozen=True)
class SpikeSettings:
    factor: float = 5.0
    start: float = 30.0
    length: float = 60.0


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    mix: Mix = DEFAULT_MIX
    spike: bool = False
    faults: tuple[FaultPlan, ...] = field(default=())

    def profile(self, rps: float, spike: SpikeSettings) -> RateProfile:
        if self.spike:
            return SpikeRate(rps, spike.factor, spike.start, spike.length)
        return ConstantRate(rps)


# Guesses at a few accounts, a fifth of arrivals, on top of the mix's ordinary typos.
_BRUTEFORCE_MIX: Final = Mix({**DEFAULT_WEIGHTS, Action.LOGIN_GUESS: 25})
_BAD_REQUESTS_MIX: Final = Mix(
    {
        **DEFAULT_WEIGHTS,
        Action.CREATE_ORDER_INVALID: 30,
        Action.LOGIN_INVALID_EMAIL: 10,
        Action.REGISTER_INVALID: 10,
    }
)

SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario("steady", "the default mix at a constant target rate"),
        Scenario("spike", "the default mix; the rate jumps by --spike-factor for a while", spike=True),
        Scenario(
            "bruteforce", "wrong-password logins against a few accounts (InvalidLoginSpike)", _BRUTEFORCE_MIX
        ),
        Scenario("bad-requests", "malformed requests answered INVALID_ARGUMENT", _BAD_REQUESTS_MIX),
        Scenario(
            "outage",
            "userd Me answers UNAVAILABLE (HighGRPCFailures, OrderCreationFailing)",
            faults=(
                FaultPlan(
                    "userd",
                    {"error": {"rate": 1.0, "code": "UNAVAILABLE", "methods": [USERD_ME]}},
                    "stop userd (`docker compose stop userd`, or Ctrl-C its process) and start it again afterwards",
                ),
            ),
        ),
        Scenario(
            "slow",
            "600-900 ms added to every orderd call (GRPCLatencyP95High)",
            faults=(
                FaultPlan(
                    "orderd",
                    {"latency": {"min_ms": 600, "max_ms": 900, "methods": ORDERD_METHODS}},
                    "restart orderd with FAULT_INJECTION_ENABLED=true; latency cannot be added by hand",
                ),
            ),
        ),
        Scenario(
            "slow-userd",
            "100-250 ms added to userd's Me on every replica (orderd's client latency; no alert)",
            faults=(
                FaultPlan(
                    "userd",
                    {"latency": {"min_ms": 100, "max_ms": 250, "methods": [USERD_ME]}},
                    "restart userd with FAULT_INJECTION_ENABLED=true; latency cannot be added by hand",
                ),
            ),
        ),
        Scenario(
            "errors",
            "INTERNAL on 20 % of orderd calls (GRPCServerErrorRateHigh, burn rate)",
            faults=(
                FaultPlan(
                    "orderd",
                    {"error": {"rate": 0.2, "code": "INTERNAL", "methods": ORDERD_METHODS}},
                    "restart orderd with FAULT_INJECTION_ENABLED=true; errors cannot be caused by hand",
                ),
            ),
        ),
    )
}
