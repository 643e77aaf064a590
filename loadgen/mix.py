"""Weighted choice of the next action, and the default traffic mix.

Default mix (weights are percentages of arrivals):

    me 31, create_order 22, get_order 22, list_orders 17.7, retry_create_order 2, login 0.5,
    register 0.1, and 4.7 % caller errors: create_order_invalid 0.8, me_garbage_token 0.7,
    get_order_unknown 0.6, login_wrong_password 0.5, create_order_garbage_token
    0.4, list_orders_garbage_token 0.4, login_unknown_email 0.3, login_invalid_email 0.3,
    me_no_token 0.3, register_existing 0.2, register_invalid 0.2.

Every Login and Register (also a failed one: userd hashes a decoy for unknown emails and hashes
before it finds a duplicate email) costs a bcrypt round, ~250 ms of userd CPU at cost 12, so they
are about 1.6 % of arrivals: at 100/s that is already most of a core. Caller errors come at their
share at any rate, wrong passwords included: the alert rules must tell an attack from ordinary
traffic by its shape (prometheus/rules/alerts.yml, InvalidLoginSpike), not by a volume this mix
stays under.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Mapping
from typing import Final

from loadgen.kinds import Action

DEFAULT_WEIGHTS: Final[dict[Action, float]] = {
    Action.ME: 31,
    Action.CREATE_ORDER: 22,
    Action.GET_ORDER: 22,
    Action.LIST_ORDERS: 17.7,
    Action.RETRY_CREATE_ORDER: 2,
    Action.LOGIN: 0.5,
    Action.REGISTER: 0.1,
    Action.CREATE_ORDER_INVALID: 0.8,
    Action.ME_GARBAGE_TOKEN: 0.7,
    Action.GET_ORDER_UNKNOWN: 0.6,
    Action.LOGIN_WRONG_PASSWORD: 0.5,
    Action.CREATE_ORDER_GARBAGE_TOKEN: 0.4,
    Action.LIST_ORDERS_GARBAGE_TOKEN: 0.4,
    Action.LOGIN_UNKNOWN_EMAIL: 0.3,
    Action.LOGIN_INVALID_EMAIL: 0.3,
    Action.ME_NO_TOKEN: 0.3,
    Action.REGISTER_EXISTING: 0.2,
    Action.REGISTER_INVALID: 0.2,
}


class Mix:
    def __init__(self, weights: Mapping[Action, float]) -> None:
        if any(weight < 0 for weight in weights.values()):
            raise ValueError("weights must not be negative")
        self._actions = [action for action, weight in weights.items() if weight > 0]
        if not self._actions:
            raise ValueError("a mix needs at least one action with a positive weight")
        self._cumulative = list(itertools.accumulate(weights[action] for action in self._actions))
        self._total = self._cumulative[-1]

    def choose(self, rng: random.Random) -> Action:
        # Guard the rare float edge where random() * total lands on the total itself.
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        return self._actions[min(index, len(self._actions) - 1)]

    def shares(self) -> dict[Action, float]:
        previous = 0.0
        shares = {}
        for action, cumulative in zip(self._actions, self._cumulative, strict=True):
            shares[action] = (cumulative - previous) / self._total
            previous = cumulative
        return shares


DEFAULT_MIX: Final = Mix(DEFAULT_WEIGHTS)
