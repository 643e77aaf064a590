"""The login model the alert-volume tests feed the rules with (tests/support/login_model.py), checked
once against a live run: the real generator running the bruteforce scenario at a known rate against a
real userd with its default throttle, and what userd counted, beside what the model predicts for the
same rate, duration and pool."""

from __future__ import annotations

from pathlib import Path

from loadgen.kinds import Action
from loadgen.scenarios import SCENARIOS
from tests.integration.loadgen.harness import loadgen_stack
from tests.integration.loadgen.test_scenarios import scenario_run
from tests.support.login_model import simulate_logins

RPS, SECONDS = 20.0, 20.0


def close(live: float, predicted: float) -> bool:
    # Both are Poisson counts of the same expectation: a few standard deviations, or 25%.
    return abs(live - predicted) <= max(3 * predicted**0.5, 0.25 * predicted)


async def test_the_model_predicts_what_userd_counts(tmp_path: Path) -> None:
    mix = SCENARIOS["bruteforce"].mix
    async with loadgen_stack(tmp_path) as stack:
        config = stack.config(tmp_path, scenario="bruteforce", rps=RPS, duration=SECONDS)
        result, _ = await scenario_run(stack, tmp_path, "bruteforce", rps=RPS, duration=SECONDS)
        live = {
            r: stack.userd_value("userd_service_login_handler_total", result=r)
            for r in ("invalid_password", "throttled")
        }
    # The model's expectation: one simulated run is one Poisson draw, as the live run is.
    runs = [
        simulate_logins(
            RPS,
            SECONDS,
            step_seconds=SECONDS,
            guesses_per_second=mix.shares()[Action.LOGIN_GUESS] * RPS,
            users=config.users,
            mix=mix,
            seed=seed,
        )
        for seed in range(40)
    ]
    predicted = {r: sum(m.total(r) for m in runs) / len(runs) for r in ("invalid_password", "throttled")}
    print(f"\nbruteforce {RPS:g}/s for {SECONDS:g}s: userd counted {live}, the model expects {predicted}")
    assert predicted["throttled"] > 0
    for name in predicted:
        assert close(live[name], predicted[name]), (name, live[name], predicted[name])
    assert result.summary.unexpected == 0
