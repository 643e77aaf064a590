"""The plan: when each request is meant to be sent and what it does, drawn from one seeded RNG.

The plan is computed from the seed alone, never from how the system responds, which is what makes
the load open-loop (no coordinated omission) and a run reproducible. Arrivals are either a Poisson
process (exponential gaps: independent users, the default) or evenly spaced.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from loadgen.kinds import Action
from loadgen.mix import Mix

Spacing = Literal["poisson", "constant"]
SPACINGS: tuple[Spacing, ...] = ("poisson", "constant")


class RateProfile(Protocol):
    def rate_at(self, t: float) -> float:
        """Target arrivals per second at `t` seconds after the start."""

    def next_change(self, t: float) -> float:
        """The first time after `t` at which the rate changes (math.inf if never)."""


@dataclass(frozen=True, slots=True)
class ConstantRate:
    rps: float

    def rate_at(self, t: float) -> float:
        return self.rps

    def next_change(self, t: float) -> float:
        return math.inf


@dataclass(frozen=True, slots=True)
class SpikeRate:
    """`base_rps`, then `base_rps * factor` from `start` for `length` seconds, then `base_rps` again."""

    base_rps: float
    factor: float
    start: float
    length: float

    def rate_at(self, t: float) -> float:
        return self.base_rps * self.factor if self.start <= t < self.start + self.length else self.base_rps

    def next_change(self, t: float) -> float:
        if t < self.start:
            return self.start
        if t < self.start + self.length:
            return self.start + self.length
        return math.inf


@dataclass(frozen=True, slots=True)
class Arrival:
    offset: float
    """Intended send time, seconds after the start."""
    action: Action
    seed: int
    """Seeds the arrival's own choices (user, basket), so they do not depend on timing or drops."""


def plan(mix: Mix, profile: RateProfile, seed: int, spacing: Spacing = "poisson") -> Iterator[Arrival]:
    """Endless arrivals in order of intended send time; the caller stops at its duration."""
    rng = random.Random(seed)
    t = 0.0
    while True:
        t = _next_time(t, profile, rng, spacing)
        yield Arrival(t, mix.choose(rng), rng.getrandbits(64))


def _next_time(t: float, profile: RateProfile, rng: random.Random, spacing: Spacing) -> float:
    while True:
        rate = profile.rate_at(t)
        gap = rng.expovariate(rate) if spacing == "poisson" else 1 / rate
        change = profile.next_change(t)
        if t + gap <= change:
            return t + gap
        # The rate changes before the next arrival: restart from the change with the new rate. For
        # Poisson arrivals this is exact (exponential gaps are memoryless).
        t = change
