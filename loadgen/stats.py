"""Latency and status bookkeeping for a run: per RPC, for the whole run and for the current
progress window.

Latencies go into log-spaced buckets 1 % wide (like HdrHistogram): memory stays bounded however
long the run, and every reported percentile is within 1 % of the exact one. The maximum is exact.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import grpc

from loadgen.kinds import Rpc, code_name

_MIN_SECONDS: Final = 1e-6
_GROWTH: Final = 1.01
_LOG_GROWTH: Final = math.log(_GROWTH)


class LatencyHistogram:
    __slots__ = ("_buckets", "count", "max")

    def __init__(self) -> None:
        self._buckets: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        index = 0 if seconds <= _MIN_SECONDS else math.ceil(math.log(seconds / _MIN_SECONDS) / _LOG_GROWTH)
        self._buckets[index] += 1
        self.count += 1
        self.max = max(self.max, seconds)

    def merge(self, other: LatencyHistogram) -> None:
        self._buckets.update(other._buckets)
        self.count += other.count
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float:
        """The smallest recorded bucket bound at or above a fraction `q` of the samples (0 if empty)."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(_MIN_SECONDS * _GROWTH**index, self.max)
        return self.max


@dataclass
class RpcStats:
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    codes: Counter[str] = field(default_factory=Counter)
    unexpected: int = 0

    @property
    def count(self) -> int:
        return self.latency.count

    def record(self, code: str, seconds: float, expected: bool) -> None:
        self.latency.record(seconds)
        self.codes[code] += 1
        if not expected:
            self.unexpected += 1


@dataclass
class Window:
    """What happened since the last progress line."""

    calls: int = 0
    unexpected: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


class Recorder:
    """Collects every finished call. Unexpected means the status differs from what the action
    expects of a healthy system (see loadgen.kinds)."""

    def __init__(self) -> None:
        self.by_rpc: dict[Rpc, RpcStats] = {}
        self.dropped = 0
        self._window = Window()

    def record(self, rpc: Rpc, code: grpc.StatusCode, seconds: float, *, expected: bool) -> None:
        stats = self.by_rpc.get(rpc)
        if stats is None:
            stats = self.by_rpc[rpc] = RpcStats()
        stats.record(code_name(code), seconds, expected)
        window = self._window
        window.calls += 1
        window.latency.record(seconds)
        if not expected:
            window.unexpected += 1

    def record_drop(self) -> None:
        self.dropped += 1

    def take_window(self) -> Window:
        window, self._window = self._window, Window()
        return window

    @property
    def calls(self) -> int:
        return sum(stats.count for stats in self.by_rpc.values())

    @property
    def unexpected(self) -> int:
        return sum(stats.unexpected for stats in self.by_rpc.values())
