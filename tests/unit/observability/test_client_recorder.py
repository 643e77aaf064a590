"""The client's done-callback recording, against stand-in call objects (the real calls are covered by
the integration tests)."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from grpcdemo.observability.client import _CallRecorder, _status_of_finished
from grpcdemo.observability.grpc_metrics import GrpcClientMetrics
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.observability_echo import Scrape

LABELS = {"grpc_type": "unary", "grpc_service": "a.v1.S", "grpc_method": "M"}


class FinishedCall:
    """Like a finished grpc.aio call: `code()` returns without suspending."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code
        self.callbacks: list[object] = []

    async def code(self) -> grpc.StatusCode:
        return self._code

    def add_done_callback(self, callback: object) -> None:
        self.callbacks.append(callback)


class SlowCall(FinishedCall):
    """A call whose `code()` does suspend (not grpc.aio's behaviour today): recorded a step later."""

    async def code(self) -> grpc.StatusCode:
        await asyncio.sleep(0)
        return self._code


class ResponseOnly:
    """What an inner interceptor may return instead of a call: no done callbacks."""

    def add_done_callback(self, callback: object) -> None:
        raise NotImplementedError


def handled(registry: CollectorRegistry, code: str) -> float:
    return Scrape(generate_latest(registry).decode()).value(
        "grpc_client_handled_total", **LABELS, grpc_code=code
    )


def test_status_of_a_finished_call_is_read_without_a_task() -> None:
    assert _status_of_finished(FinishedCall(grpc.StatusCode.NOT_FOUND)) == grpc.StatusCode.NOT_FOUND
    assert _status_of_finished(SlowCall(grpc.StatusCode.NOT_FOUND)) is None


async def test_done_callback_records_the_final_code() -> None:
    registry = CollectorRegistry()
    recorder = _CallRecorder(
        GrpcClientMetrics(registry).method("/a.v1.S/M", "unary"), None, unary_response=True
    )
    call = FinishedCall(grpc.StatusCode.PERMISSION_DENIED)
    recorder.when_done(call)
    assert handled(registry, "PermissionDenied") == 0  # nothing until grpc calls back
    recorder._on_done(call)
    assert handled(registry, "PermissionDenied") == 1


async def test_a_suspending_code_is_recorded_on_the_next_loop_turn() -> None:
    registry = CollectorRegistry()
    recorder = _CallRecorder(
        GrpcClientMetrics(registry).method("/a.v1.S/M", "unary"), None, unary_response=True
    )
    recorder._on_done(SlowCall(grpc.StatusCode.UNAVAILABLE))
    assert handled(registry, "Unavailable") == 0
    for _ in range(3):
        await asyncio.sleep(0)
    assert handled(registry, "Unavailable") == 1


def test_a_plain_response_from_an_inner_interceptor_counts_as_ok() -> None:
    registry = CollectorRegistry()
    recorder = _CallRecorder(
        GrpcClientMetrics(registry).method("/a.v1.S/M", "unary"), None, unary_response=True
    )
    recorder.when_done(ResponseOnly())
    assert handled(registry, "OK") == 1
    assert Scrape(generate_latest(registry).decode()).value("grpc_client_msg_received_total", **LABELS) == 1


def test_a_failing_callback_never_reaches_grpc(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def code(self) -> object:
            raise RuntimeError("broken call object")

    registry = CollectorRegistry()
    recorder = _CallRecorder(
        GrpcClientMetrics(registry).method("/a.v1.S/M", "unary"), None, unary_response=True
    )
    with caplog.at_level(logging.ERROR, logger="grpcdemo.observability.client"):
        recorder._on_done(Broken())  # logged, not raised
    assert [r.getMessage() for r in caplog.records] == ["recording a gRPC client call failed"]
    assert caplog.records[0].exc_info is not None
    # Nothing half-recorded: no code at all, not even Unknown.
    assert all(handled(registry, code) == 0 for code in ("OK", "Unknown"))
