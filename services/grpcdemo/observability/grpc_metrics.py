"""The gRPC metric families (names, types and label values of go-grpc-middleware's
providers/prometheus) and the per-method state the interceptors record into.

The families are exposed by a custom collector over plain per-method numbers rather than by
prometheus_client Counter/Histogram children: a unary call updates seven series, and through the
metric objects that cost ~10 us of server CPU per call (~4 % of a trivial call here) against ~1 us
for one lock and a few additions. The collector renders the same text and OpenMetrics output,
exemplars included.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

from grpcdemo.observability.grpc_names import OK, OVERFLOW_NAME, GrpcType, MethodName, grpc_type_of

# Loopback reads and writes (Me, GetOrder, ListOrders) finish in 0.5-5 ms, so the low end is fine
# grained; bcrypt at cost 12 puts Register/Login at ~200-300 ms, so 0.1-0.5 s is split into 0.1 s
# steps to see a cost bump (each +1 doubles it) or CPU starvation move the p99; 2.5-10 s catches calls
# that run into client deadlines. Server and client share them so the two sides can be compared.
GRPC_LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Well above the methods any one process serves or calls; only a catch-all handler or a client fed
# arbitrary method names reaches it, and beyond it names collapse into OVERFLOW_NAME.
DEFAULT_MAX_METHODS: Final = 256

_BASE_LABELS: Final = ("grpc_type", "grpc_service", "grpc_method")


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One method to pre-initialise, for services registered with generic handlers."""

    service: str
    method: str
    grpc_type: GrpcType

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"


def methods_of(service: ServiceDescriptor) -> list[MethodSpec]:
    """All methods of a protobuf service, e.g. `user_pb2.DESCRIPTOR.services_by_name["UserService"]`."""
    return [
        MethodSpec(
            service.full_name, method.name, grpc_type_of(method.client_streaming, method.server_streaming)
        )
        for method in service.methods
    ]


class MethodMetrics:
    """Counts, latency histogram and exemplars of one method on one side (server or client).

    Every update takes the side's lock once: sync handlers record from grpc's thread pool and
    scrapes read from the HTTP thread, and one snapshot must keep a histogram's buckets, count and
    sum consistent.
    """

    __slots__ = (
        "_bounds",
        "_lock",
        "bucket_counts",
        "bucket_exemplars",
        "handled",
        "handled_exemplars",
        "in_flight",
        "labels",
        "latency_sum",
        "msg_received",
        "msg_sent",
        "started",
    )

    def __init__(self, labels: tuple[str, str, str], bounds: Sequence[float], lock: threading.Lock) -> None:
        self.labels = labels
        self._bounds = bounds
        self._lock = lock
        self.started = 0
        self.msg_received = 0
        self.msg_sent = 0
        self.in_flight = 0
        self.handled: dict[str, int] = {}
        self.handled_exemplars: dict[str, Exemplar] = {}
        # Per bucket, not cumulative; the last one is +Inf.
        self.bucket_counts = [0] * (len(bounds) + 1)
        self.bucket_exemplars: list[Exemplar | None] = [None] * (len(bounds) + 1)
        self.latency_sum = 0.0

    @property
    def grpc_type(self) -> str:
        return self.labels[0]

    def start(self, *, received: int = 0, sent: int = 0) -> None:
        with self._lock:
            self.started += 1
            self.in_flight += 1
            self.msg_received += received
            self.msg_sent += sent

    def received(self) -> None:
        with self._lock:
            self.msg_received += 1

    def sent(self) -> None:
        with self._lock:
            self.msg_sent += 1

    def finish(
        self,
        code: str,
        seconds: float,
        exemplar: dict[str, str] | None,
        *,
        received: int = 0,
        sent: int = 0,
    ) -> None:
        index = bisect_left(self._bounds, seconds)  # first bucket with seconds <= le
        latency_exemplar = count_exemplar = None
        if exemplar is not None:
            now = time.time()
            latency_exemplar = Exemplar(exemplar, seconds, now)
            # A trace behind an error is what someone debugging wants to open; on OK counts it would
            # only be overwritten by the next call.
            if code != OK:
                count_exemplar = Exemplar(exemplar, 1.0, now)
        with self._lock:
            self.in_flight -= 1
            self.msg_received += received
            self.msg_sent += sent
            self.handled[code] = self.handled.get(code, 0) + 1
            self.bucket_counts[index] += 1
            self.latency_sum += seconds
            if latency_exemplar is not None:
                self.bucket_exemplars[index] = latency_exemplar
            if count_exemplar is not None:
                self.handled_exemplars[code] = count_exemplar

    def ensure_code(self, code: str) -> None:
        with self._lock:
            self.handled.setdefault(code, 0)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    labels: tuple[str, str, str]
    started: int
    msg_received: int
    msg_sent: int
    in_flight: int
    handled: dict[str, int]
    handled_exemplars: dict[str, Exemplar]
    bucket_counts: list[int]
    bucket_exemplars: list[Exemplar | None]
    latency_sum: float


class _GrpcCollector(Collector):
    """Renders one side's methods as the go-grpc-middleware families."""

    def __init__(self, side: str, noun: str, bounds: Sequence[float], export_in_flight: bool) -> None:
        self.lock = threading.Lock()
        self.methods: list[MethodMetrics] = []
        self._side = side
        self._noun = noun
        # The same `le` spelling a prometheus_client Histogram uses ("0.005", "1.0", "+Inf").
        self._les = [floatToGoString(bound) for bound in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._export_in_flight = export_in_flight

    def _snapshot(self) -> list[_Snapshot]:
        with self.lock:
            return [
                _Snapshot(
                    m.labels,
                    m.started,
                    m.msg_received,
                    m.msg_sent,
                    m.in_flight,
                    dict(m.handled),
                    dict(m.handled_exemplars),
                    list(m.bucket_counts),
                    list(m.bucket_exemplars),
                    m.latency_sum,
                )
                for m in self.methods
            ]

    def _families(self) -> tuple[CounterMetricFamily, ...]:
        p, side = f"grpc_{self._side}", self._side
        labels = list(_BASE_LABELS)
        return (
            CounterMetricFamily(
                f"{p}_started", f"Total number of RPCs started on the {side}.", labels=labels
            ),
            CounterMetricFamily(
                f"{p}_handled",
                f"Total number of RPCs completed on the {side}, regardless of success or failure.",
                labels=[*labels, "grpc_code"],
            ),
            CounterMetricFamily(
                f"{p}_msg_received",
                f"Total number of RPC stream messages received by the {side}.",
                labels=labels,
            ),
            CounterMetricFamily(
                f"{p}_msg_sent", f"Total number of gRPC stream messages sent by the {side}.", labels=labels
            ),
        )

    def _histogram(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(
            f"grpc_{self._side}_handling_seconds",
            f"Histogram of response latency (seconds) of gRPC calls until {self._noun}.",
            labels=list(_BASE_LABELS),
        )

    def _in_flight(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "grpc_server_in_flight_requests",
            "Number of RPCs the server has started and not yet finished.",
            labels=["grpc_service", "grpc_method"],
        )

    def describe(self) -> Iterable[Metric]:
        # Names only, so the registry can refuse a second registration of the same families.
        yield from self._families()
        yield self._histogram()
        if self._export_in_flight:
            yield self._in_flight()

    def collect(self) -> Iterator[Metric]:
        started, handled, received, sent = self._families()
        histogram = self._histogram()
        in_flight = self._in_flight()
        for s in self._snapshot():
            labels = list(s.labels)
            started.add_metric(labels, s.started)
            for code, count in s.handled.items():
                handled.add_metric([*labels, code], count, exemplar=s.handled_exemplars.get(code))
            received.add_metric(labels, s.msg_received)
            sent.add_metric(labels, s.msg_sent)
            cumulative = 0
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            for le, count, exemplar in zip(self._les, s.bucket_counts, s.bucket_exemplars, strict=True):
                cumulative += count
                buckets.append((le, cumulative) if exemplar is None else (le, cumulative, exemplar))
            histogram.add_metric(labels, buckets, s.latency_sum)
            in_flight.add_metric(labels[1:], s.in_flight)
        yield from (started, handled, received, sent, histogram)
        if self._export_in_flight:
            yield in_flight


class _GrpcSideMetrics:
    def __init__(
        self,
        registry: CollectorRegistry | None,
        side: str,
        noun: str,
        buckets: Sequence[float],
        max_methods: int,
        export_in_flight: bool,
    ) -> None:
        self._bounds = tuple(sorted(buckets))
        self._collector = _GrpcCollector(side, noun, self._bounds, export_in_flight)
        self._max_methods = max_methods
        self._by_key: dict[tuple[str | bytes, str], MethodMetrics] = {}
        self._names: dict[tuple[MethodName, str], MethodMetrics] = {}
        self._distinct_names: set[MethodName] = set()
        if registry is not None:
            registry.register(self._collector)

    @property
    def collector(self) -> Collector:
        return self._collector

    def method(self, path: str | bytes, grpc_type: GrpcType) -> MethodMetrics:
        """State of `/pkg.Service/Method`; created once, then a dict lookup."""
        key = (path, grpc_type)
        found = self._by_key.get(key)
        if found is not None:
            return found
        return self._create(key)

    def _create(self, key: tuple[str | bytes, GrpcType]) -> MethodMetrics:
        path, grpc_type = key
        name = MethodName.parse(path)
        with self._collector.lock:
            if name not in self._distinct_names and len(self._distinct_names) >= self._max_methods:
                # Not remembered by path: that dict would grow with every new name it is meant to bound.
                name = MethodName(OVERFLOW_NAME, OVERFLOW_NAME)
                overflow = True
            else:
                self._distinct_names.add(name)
                overflow = False
            found = self._names.get((name, grpc_type))
            if found is None:
                found = MethodMetrics(
                    (grpc_type, name.service, name.method), self._bounds, self._collector.lock
                )
                self._names[(name, grpc_type)] = found
                self._collector.methods.append(found)
            if not overflow:
                self._by_key[key] = found
        return found

    def preinitialize(self, service: ServiceDescriptor, codes: Iterable[str] = (OK,)) -> None:
        """Creates the series of every method of `service` at zero, so rates and ratios exist from the
        first scrape instead of appearing with the first call (`codes` picks the handled codes)."""
        self.preinitialize_methods(methods_of(service), codes)

    def preinitialize_methods(self, methods: Iterable[MethodSpec], codes: Iterable[str] = (OK,)) -> None:
        code_list = tuple(codes)
        for spec in methods:
            state = self.method(spec.path, spec.grpc_type)
            for code in code_list:
                state.ensure_code(code)


class GrpcServerMetrics(_GrpcSideMetrics):
    """`grpc_server_*` families plus `grpc_server_in_flight_requests{grpc_service,grpc_method}`."""

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        buckets: Sequence[float] = GRPC_LATENCY_BUCKETS,
        max_methods: int = DEFAULT_MAX_METHODS,
    ) -> None:
        super().__init__(registry, "server", "the server has handled them", buckets, max_methods, True)


class GrpcClientMetrics(_GrpcSideMetrics):
    """`grpc_client_*` families."""

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        buckets: Sequence[float] = GRPC_LATENCY_BUCKETS,
        max_methods: int = DEFAULT_MAX_METHODS,
    ) -> None:
        super().__init__(registry, "client", "the client has seen them finish", buckets, max_methods, False)
