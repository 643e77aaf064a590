"""What userd's failed-login throttle does with the load generator's logins, simulated: arrivals as the
generator makes them (Poisson, at the mix's shares), each on the account the generator's own choice
functions pick (loadgen/accounts.py), fed in time order through userd's own `LoginThrottle` with its
default allowance (userd/config.py). The counts per step are what userd's
`userd_service_login_handler_total{result}` would add up to, so the alert-volume tests feed the rules
with them instead of assuming refusals never happen. tests/integration/loadgen/test_login_model.py
checks the model once against a live run."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from userd import config as userd_config
from userd.domain.throttle import LoginThrottle

from loadgen.accounts import corrects_typo, guessed_account, pool_size, typo_account
from loadgen.config import LoadgenConfig
from loadgen.kinds import Action
from loadgen.mix import DEFAULT_MIX, Mix
from loadgen.scenarios import SCENARIOS

# What userd runs with unless told otherwise: the throttle's allowance and the token lifetime.
_USERD = userd_config.load({"JWT_SECRET": "x" * 32})
DEFAULT_USERS = LoadgenConfig().users
# A correction follows its typo once the person has read the refusal (about one bcrypt check later).
CORRECTION_DELAY_SECONDS = 0.5
GUESS_SHARE = SCENARIOS["bruteforce"].mix.shares()[Action.LOGIN_GUESS]


@dataclass
class LoginCounts:
    """Per step of `step_seconds`: how userd would count the logins that reach a password check."""

    step_seconds: float
    invalid_password: list[int]
    throttled: list[int]
    success: list[int]
    refused_right_passwords: int = 0
    accounts: int = 0
    per_account_failures: dict[int, int] = field(default_factory=dict)

    def rate(self, result: str) -> Callable[[float], float]:
        """Per-second rate of `result` in the step a minute falls in (what Traffic.add takes)."""
        counts: list[int] = getattr(self, result)
        return lambda minute: (
            counts[min(int(minute * 60 // self.step_seconds), len(counts) - 1)] / self.step_seconds
        )

    def total(self, result: str) -> int:
        return sum(getattr(self, result))


def _arrivals(rng: random.Random, rate: float, start: float, end: float) -> list[float]:
    times: list[float] = []
    t = start
    if rate <= 0:
        return times
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return times
        times.append(t)


def simulate_logins(
    rps: float,
    seconds: float,
    *,
    step_seconds: float = 30.0,
    guesses_per_second: float = 0.0,
    guesses_from: float = 0.0,
    users: int = DEFAULT_USERS,
    mix: Mix = DEFAULT_MIX,
    seed: int = 1,
    typo_chooser: Callable[[random.Random, int], int] = typo_account,
) -> LoginCounts:
    rng = random.Random(seed)
    shares = mix.shares()
    accounts = pool_size(users, rps)
    # (time, account, right password?)
    events: list[tuple[float, int, bool]] = []
    for t in _arrivals(rng, shares.get(Action.LOGIN_WRONG_PASSWORD, 0.0) * rps, 0.0, seconds):
        account = typo_chooser(rng, accounts)
        events.append((t, account, False))
        if corrects_typo(rng):
            events.append((t + CORRECTION_DELAY_SECONDS, account, True))
    # The mix's logins and the pool's token refreshes (one per token lifetime, less its margin) pick
    # any user, as Actions._user does.
    refreshes = accounts / (0.9 * _USERD.jwt_ttl_seconds)
    for t in _arrivals(rng, shares.get(Action.LOGIN, 0.0) * rps + refreshes, 0.0, seconds):
        events.append((t, rng.randrange(accounts), True))
    for t in _arrivals(rng, guesses_per_second, guesses_from, seconds):
        events.append((t, guessed_account(rng, accounts), False))
    events.sort()

    now = [0.0]
    throttle = LoginThrottle(
        _USERD.login_throttle_failures, _USERD.login_throttle_window_seconds, clock=lambda: now[0]
    )
    steps = int(seconds // step_seconds) + 1
    counts = LoginCounts(step_seconds, [0] * steps, [0] * steps, [0] * steps, accounts=accounts)
    for t, account, right in events:
        if t >= seconds:
            continue
        now[0] = t
        step = int(t // step_seconds)
        email = f"user-{account}@loadgen.example"
        if not throttle.admit(email):
            counts.throttled[step] += 1
            counts.refused_right_passwords += right
            continue
        throttle.finished(email, failed=not right)
        if right:
            counts.success[step] += 1
        else:
            counts.invalid_password[step] += 1
            counts.per_account_failures[account] = counts.per_account_failures.get(account, 0) + 1
    return counts
