"""The fault state: which faults are switched on for which methods, as immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import grpc

# Only what orchestrators and tools use to talk to the process itself; named explicitly they can
# still be targeted.
EXEMPT_SERVICE_PREFIXES: Final = ("/grpc.health.", "/grpc.reflection.")

KINDS: Final = ("latency", "error")


@dataclass(frozen=True, slots=True)
class MethodFilter:
    names: frozenset[str] = frozenset()

    def matches(self, path: str) -> bool:
        if not self.names:
            return not path.startswith(EXEMPT_SERVICE_PREFIXES)
        return path in self.names or path.rpartition("/")[2] in self.names

    def to_json(self) -> list[str]:
        return sorted(self.names)


@dataclass(frozen=True, slots=True)
class LatencyFault:
    min_ms: float
    max_ms: float
    methods: MethodFilter = MethodFilter()

    @property
    def active(self) -> bool:
        return self.max_ms > 0

    def to_json(self) -> dict[str, Any]:
        return {"min_ms": self.min_ms, "max_ms": self.max_ms, "methods": self.methods.to_json()}


@dataclass(frozen=True, slots=True)
class ErrorFault:
    rate: float
    code: grpc.StatusCode
    methods: MethodFilter = MethodFilter()

    @property
    def active(self) -> bool:
        return self.rate > 0

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "code": self.code.name, "methods": self.methods.to_json()}


@dataclass(frozen=True, slots=True)
class FaultState:
    latency: LatencyFault | None = None
    error: ErrorFault | None = None

    def active_kinds(self) -> frozenset[str]:
        kinds = set()
        if self.latency is not None and self.latency.active:
            kinds.add("latency")
        if self.error is not None and self.error.active:
            kinds.add("error")
        return frozenset(kinds)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_json() if self.latency is not None else None,
            "error": self.error.to_json() if self.error is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one call: wait `delay_seconds`, then fail with `code` unless it is None. The
    handler wrapper (grpcdemo.observability.server) applies it inside the metrics and the span."""

    delay_seconds: float = 0.0
    code: grpc.StatusCode | None = None

    @property
    def message(self) -> str:
        name = self.code.name if self.code is not None else "none"
        return f"injected fault: {name} (fault injection is switched on for this service)"
