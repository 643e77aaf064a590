"""Latency histogram accuracy, recorder bookkeeping and status code spelling."""

from __future__ import annotations

import math
import random

import grpc
import pytest

from loadgen.kinds import CATALOG, Action, Rpc, code_name, expected_code, rpc_of
from loadgen.stats import LatencyHistogram, Recorder


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_percentiles_within_one_percent_of_exact() -> None:
    rng = random.Random(5)
    # Log-normal around 5 ms with a long tail, like real RPC latencies.
    values = [rng.lognormvariate(math.log(0.005), 1.0) for _ in range(50_000)]
    histogram = LatencyHistogram()
    for value in values:
        histogram.record(value)
    assert histogram.count == len(values)
    assert histogram.max == max(values)
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = exact_percentile(values, q)
        assert exact <= histogram.percentile(q) <= exact * 1.01 + 1e-9, q
    assert histogram.percentile(1.0) == max(values)


def test_empty_tiny_and_merged_histograms() -> None:
    empty = LatencyHistogram()
    assert empty.percentile(0.99) == 0.0
    tiny = LatencyHistogram()
    tiny.record(0.0)
    tiny.record(1e-9)
    assert tiny.percentile(0.5) == pytest.approx(1e-9)
    first, second = LatencyHistogram(), LatencyHistogram()
    for value in (0.001, 0.002, 0.003):
        first.record(value)
    for value in (0.1, 0.2):
        second.record(value)
    first.merge(second)
    assert first.count == 5
    assert first.max == 0.2
    assert first.percentile(0.6) == pytest.approx(0.003, rel=0.01)
    assert first.percentile(0.8) == pytest.approx(0.1, rel=0.01)


def test_recorder_counts_codes_unexpected_and_windows() -> None:
    recorder = Recorder()
    recorder.record(Rpc.ME, grpc.StatusCode.OK, 0.01, expected=True)
    recorder.record(Rpc.ME, grpc.StatusCode.UNAUTHENTICATED, 0.02, expected=True)
    recorder.record(Rpc.CREATE_ORDER, grpc.StatusCode.UNAVAILABLE, 0.5, expected=False)
    recorder.record_drop()
    assert recorder.calls == 3
    assert recorder.unexpected == 1
    assert recorder.dropped == 1
    assert dict(recorder.by_rpc[Rpc.ME].codes) == {"OK": 1, "Unauthenticated": 1}
    assert dict(recorder.by_rpc[Rpc.CREATE_ORDER].codes) == {"Unavailable": 1}
    window = recorder.take_window()
    assert (window.calls, window.unexpected, window.latency.max) == (3, 1, 0.5)
    assert recorder.take_window().calls == 0
    # The run's totals are not reset by taking a window.
    assert recorder.calls == 3


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (grpc.StatusCode.OK, "OK"),
        (grpc.StatusCode.CANCELLED, "Canceled"),
        (grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "DeadlineExceeded"),
        (grpc.StatusCode.UNAVAILABLE, "Unavailable"),
        (grpc.StatusCode.DATA_LOSS, "DataLoss"),
        (grpc.StatusCode.UNAUTHENTICATED, "Unauthenticated"),
    ],
)
def test_code_names_use_go_spelling(code: grpc.StatusCode, name: str) -> None:
    assert code_name(code) == name


def test_catalog_covers_every_action() -> None:
    assert set(CATALOG) == set(Action)
    assert rpc_of(Action.RETRY_CREATE_ORDER) is Rpc.CREATE_ORDER
    assert expected_code(Action.GET_ORDER_UNKNOWN) is grpc.StatusCode.NOT_FOUND
