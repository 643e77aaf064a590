"""The seeded plan: proportions, reproducibility, arrival processes and rate profiles."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from loadgen.arrivals import Arrival, ConstantRate, SpikeRate, plan
from loadgen.kinds import Action
from loadgen.mix import DEFAULT_MIX, DEFAULT_WEIGHTS, Mix


def take(n: int, arrivals: object) -> list[Arrival]:
    return list(itertools.islice(arrivals, n))  # type: ignore[call-overload]


def test_default_mix_proportions_over_many_draws() -> None:
    rng = random.Random(1)
    draws = 200_000
    counts = Counter(DEFAULT_MIX.choose(rng) for _ in range(draws))
    total_weight = sum(DEFAULT_WEIGHTS.values())
    assert total_weight == pytest.approx(100)
    for action, weight in DEFAULT_WEIGHTS.items():
        share = weight / total_weight
        # 5 standard deviations of a binomial share, so a correct mix never fails by chance.
        tolerance = 5 * math.sqrt(share * (1 - share) / draws)
        assert abs(counts[action] / draws - share) < tolerance, action
    assert set(counts) == set(DEFAULT_WEIGHTS)


def test_every_action_but_the_attack_is_in_the_default_mix() -> None:
    # Guesses at a few accounts are an attack (the bruteforce scenario), never ordinary traffic.
    assert set(DEFAULT_WEIGHTS) == set(Action) - {Action.LOGIN_GUESS}


def test_mix_shares_and_validation() -> None:
    mix = Mix({Action.ME: 3, Action.LOGIN: 1, Action.REGISTER: 0})
    assert mix.shares() == {Action.ME: 0.75, Action.LOGIN: 0.25}
    rng = random.Random(3)
    assert {mix.choose(rng) for _ in range(1000)} == {Action.ME, Action.LOGIN}
    with pytest.raises(ValueError, match="negative"):
        Mix({Action.ME: -1})
    with pytest.raises(ValueError, match="positive weight"):
        Mix({Action.ME: 0})


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    first = take(2000, plan(DEFAULT_MIX, ConstantRate(50), seed=42))
    again = take(2000, plan(DEFAULT_MIX, ConstantRate(50), seed=42))
    other = take(2000, plan(DEFAULT_MIX, ConstantRate(50), seed=43))
    assert first == again
    assert [a.action for a in first] != [a.action for a in other]
    assert [a.seed for a in first] != [a.seed for a in other]


def test_arrivals_are_in_time_order() -> None:
    arrivals = take(5000, plan(DEFAULT_MIX, SpikeRate(10, 5, 20, 30), seed=1))
    offsets = [a.offset for a in arrivals]
    assert offsets == sorted(offsets)
    assert offsets[0] > 0


def test_poisson_rate_and_exponential_gaps() -> None:
    rate = 200.0
    arrivals = take(40_000, plan(DEFAULT_MIX, ConstantRate(rate), seed=9))
    # 40 000 arrivals of a Poisson process take 200 s give or take 0.5 % (one sd).
    assert arrivals[-1].offset == pytest.approx(len(arrivals) / rate, rel=0.02)
    gaps = [b.offset - a.offset for a, b in itertools.pairwise(arrivals)]
    mean = sum(gaps) / len(gaps)
    variance = sum((g - mean) ** 2 for g in gaps) / len(gaps)
    # Exponential: the standard deviation equals the mean (constant spacing would give 0).
    assert math.sqrt(variance) == pytest.approx(mean, rel=0.05)


def test_constant_spacing_is_exact() -> None:
    arrivals = take(100, plan(DEFAULT_MIX, ConstantRate(20), seed=1, spacing="constant"))
    assert [a.offset for a in arrivals] == pytest.approx([(n + 1) / 20 for n in range(100)])


def test_spike_profile() -> None:
    profile = SpikeRate(base_rps=10, factor=5, start=30, length=60)
    assert [profile.rate_at(t) for t in (0, 29.9, 30, 89.9, 90, 500)] == [10, 10, 50, 50, 10, 10]
    assert [profile.next_change(t) for t in (0, 45, 95)] == [30, 90, math.inf]
    arrivals = take(10_000, plan(DEFAULT_MIX, profile, seed=5, spacing="constant"))

    def count(low: float, high: float) -> int:
        return sum(low <= a.offset < high for a in arrivals)

    assert count(0, 30) == pytest.approx(300, abs=2)
    assert count(30, 90) == pytest.approx(3000, abs=2)
    assert count(90, 120) == pytest.approx(300, abs=2)


def test_wrong_passwords_come_at_their_share_at_any_rate() -> None:
    """No cap tunes the mix to the alert rules: at 500/s wrong passwords are 0.5 % of arrivals."""
    arrivals = take(60_000, plan(DEFAULT_MIX, ConstantRate(500), seed=4))
    wrong = sum(a.action is Action.LOGIN_WRONG_PASSWORD for a in arrivals)
    share = DEFAULT_WEIGHTS[Action.LOGIN_WRONG_PASSWORD] / sum(DEFAULT_WEIGHTS.values())
    assert wrong == pytest.approx(60_000 * share, rel=0.1)
