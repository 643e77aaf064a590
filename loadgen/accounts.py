"""Whose account a login-related action uses, and how large the user pool must be for a rate.

Ordinary wrong passwords are typos, and a typo belongs to someone who is logging in: it falls on
accounts in proportion to their logins (uniformly over the pool, as the mix's logins do) and is
usually followed at once by that person's right password. An attack has the other shape: many
guesses at a few accounts. userd's failed-login throttle (5 failures per email within 30 s) tells the
two apart, and InvalidLoginSpike reads its refusals; so the generator must keep the two shapes at any
rate. The pool therefore grows with the rate: at `USERS_PER_RPS` accounts per request/s, an account
sees about one typo every 400 s whatever the rate, where 5 in 30 s would trip the throttle.
tests/stack/test_alert_volume.py runs userd's own throttle on these very choices to model what the
alert rules see at 1x, 10x and 100x."""

from __future__ import annotations

import math
import random
from typing import Final

USERS_PER_RPS: Final = 2
# An attack's targets: few enough that its guesses trip the throttle at the bruteforce scenario's rate.
ATTACKED_ACCOUNTS: Final = 3
# Most people who mistype try again with the right password; some give up.
TYPO_CORRECTED: Final = 0.9


def pool_size(users: int, rps: float) -> int:
    """`--users` is a floor: the pool holds at least USERS_PER_RPS accounts per request/s."""
    return max(users, math.ceil(USERS_PER_RPS * rps))


def typo_account(rng: random.Random, accounts: int) -> int:
    """The account of someone who mistypes: anyone who logs in, as likely as their logins are."""
    return rng.randrange(accounts)


def corrects_typo(rng: random.Random) -> bool:
    return rng.random() < TYPO_CORRECTED


def guessed_account(rng: random.Random, accounts: int) -> int:
    """An attacker's target: one of a few accounts."""
    return rng.randrange(min(ATTACKED_ACCOUNTS, accounts))
