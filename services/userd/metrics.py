"""userd business counters. Every result value is created at start-up so rate() and alerts see a
zero, not an absent series, before the first event."""

from __future__ import annotations

from grpcdemo.runtime.result_counter import ResultCounter
from prometheus_client import CollectorRegistry

# `throttled`: refused by the failed-login throttle without a bcrypt check; `overloaded`: refused
# because too much bcrypt work is already running or waiting (RESOURCE_EXHAUSTED).
LOGIN_RESULTS = ("success", "user_not_found", "invalid_password", "invalid_input", "throttled", "overloaded")
REGISTER_RESULTS = ("success", "user_exists", "invalid_input", "overloaded")
ME_RESULTS = ("success", "invalid_token", "missing_token", "user_not_found")


class UserdMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.login = ResultCounter(
            "userd_service_login_handler", "Login attempts by result.", LOGIN_RESULTS, registry
        )
        self.register = ResultCounter(
            "userd_service_register_handler", "Registrations by result.", REGISTER_RESULTS, registry
        )
        self.me = ResultCounter("userd_service_me_handler", "Me lookups by result.", ME_RESULTS, registry)
