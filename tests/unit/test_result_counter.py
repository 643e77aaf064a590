"""A business counter records one result per call, also for calls cancelled mid-way (client cancel,
deadline), which grpc_server_handled_total counts as Canceled/DeadlineExceeded."""

from __future__ import annotations

import asyncio

import pytest
from grpcdemo.errors import InvalidInput
from grpcdemo.runtime.result_counter import ResultCounter
from prometheus_client import CollectorRegistry

RESULTS = ("success", "failed", "invalid_input")


def counts(registry: CollectorRegistry, name: str = "demo_calls") -> dict[str, float]:
    return {
        result: registry.get_sample_value(f"{name}_total", {"result": result}) or 0.0 for result in RESULTS
    }


def counter(registry: CollectorRegistry, fallback: str | None = "failed") -> ResultCounter:
    return ResultCounter("demo_calls", "Demo calls by result.", RESULTS, registry, fallback=fallback)


async def test_a_cancelled_use_case_counts_as_the_fallback_and_stays_cancelled() -> None:
    registry = CollectorRegistry()
    calls = counter(registry)
    entered = asyncio.Event()

    async def use_case() -> None:
        with calls.recording():
            entered.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(use_case())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert counts(registry) == {"success": 0, "failed": 1, "invalid_input": 0}


def test_cancellation_without_a_fallback_is_not_counted() -> None:
    registry = CollectorRegistry()
    calls = counter(registry, fallback=None)

    with pytest.raises(asyncio.CancelledError), calls.recording():
        raise asyncio.CancelledError

    assert counts(registry) == {"success": 0, "failed": 0, "invalid_input": 0}


def test_domain_errors_success_and_unexpected_errors_are_counted_as_before() -> None:
    registry = CollectorRegistry()
    calls = counter(registry)

    with calls.recording():
        pass
    with pytest.raises(InvalidInput), calls.recording():
        raise InvalidInput("bad basket")
    with pytest.raises(RuntimeError), calls.recording():
        raise RuntimeError("boom")

    assert counts(registry) == {"success": 1, "failed": 1, "invalid_input": 1}


def test_keyboard_interrupt_is_not_a_result() -> None:
    registry = CollectorRegistry()
    calls = counter(registry)

    with pytest.raises(KeyboardInterrupt), calls.recording():
        raise KeyboardInterrupt

    assert counts(registry) == {"success": 0, "failed": 0, "invalid_input": 0}
