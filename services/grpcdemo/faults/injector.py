"""The process's fault state, its gauge, and the per-call decision the handler wrapper asks for."""

from __future__ import annotations

import json
import logging
import random
import re

from prometheus_client import CollectorRegistry, Gauge

from grpcdemo.faults.model import KINDS, Decision, FaultState

log = logging.getLogger(__name__)

_METRIC_PREFIX = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class FaultInjector:
    """Per-process fault state plus the `<service>_fault_injection_active{kind}` gauge.

    The admin handler replaces the state from the metrics server's thread while calls read it on the
    event loop; the state is an immutable object swapped in one assignment, so readers never see a
    half-applied change. `decide` is the before-call hook of the handler wrapper: with no fault
    switched on it returns None after one attribute read."""

    def __init__(self, service: str, registry: CollectorRegistry, rng: random.Random | None = None) -> None:
        if not _METRIC_PREFIX.fullmatch(service):
            raise ValueError(f"service {service!r} is not usable as a metric name prefix")
        self.service = service
        self._rng = rng or random.Random()
        self._state = FaultState()
        self._any_active = False
        gauge = Gauge(
            f"{service}_fault_injection_active",
            "1 while injected faults of this kind are switched on (chaos drills), else 0.",
            ["kind"],
            registry=registry,
        )
        self._gauges = {kind: gauge.labels(kind=kind) for kind in KINDS}
        for child in self._gauges.values():
            child.set(0)

    @property
    def state(self) -> FaultState:
        return self._state

    def set(self, state: FaultState) -> None:
        active = state.active_kinds()
        self._state = state
        self._any_active = bool(active)
        for kind, child in self._gauges.items():
            child.set(1 if kind in active else 0)
        if active:
            log.warning("fault injection switched on", extra={"faults": json.dumps(state.to_json())})
        else:
            log.warning("fault injection switched off")

    def clear(self) -> None:
        self.set(FaultState())

    def decide(self, path: str) -> Decision | None:
        """What to do to a call of `path` now: None for nothing (the common case)."""
        if not self._any_active:
            return None
        state = self._state
        delay = 0.0
        code = None
        latency, error = state.latency, state.error
        if latency is not None and latency.active and latency.methods.matches(path):
            delay = self._rng.uniform(latency.min_ms, latency.max_ms) / 1000
        if (
            error is not None
            and error.active
            and error.methods.matches(path)
            and self._rng.random() < error.rate
        ):
            code = error.code
        if delay == 0 and code is None:
            return None
        return Decision(delay, code)
