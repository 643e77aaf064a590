"""grpc.aio client interceptors recording `grpc_client_*` metrics for every call, failed ones included.

The final status is read from the call's done callback, never by awaiting the call: awaiting raises
on any non-OK status (and would block a client-streaming caller that writes after the interceptor
returns). The callback fires before the caller's `await` returns, so the metrics are up to date when
the caller sees the result.

grpc.aio files an interceptor under the first of the four kinds it is an instance of, so each kind
is a separate object; `client_metrics_interceptors()` returns all four.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from time import perf_counter
from typing import Any

import grpc

from shared.observability.counting import CountingAsyncIterator, counting
from shared.observability.grpc_metrics import GrpcClientMetrics, MethodMetrics
from shared.observability.grpc_names import (
    BIDI_STREAM,
    CANCELED,
    CLIENT_STREAM,
    OK,
    SERVER_STREAM,
    UNARY,
    UNKNOWN,
    GrpcType,
    go_code_name,
)
from shared.observability.trace_context import trace_exemplar

log = logging.getLogger(__name__)

Continuation = Callable[[Any, Any], Awaitable[Any]]


def client_metrics_interceptors(metrics: GrpcClientMetrics) -> list[Any]:
    """One interceptor per call kind; put them after (inside) the tracing interceptors."""
    return [
        UnaryUnaryMetricsInterceptor(metrics),
        UnaryStreamMetricsInterceptor(metrics),
        StreamUnaryMetricsInterceptor(metrics),
        StreamStreamMetricsInterceptor(metrics),
    ]


def _code_of_exception(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return go_code_name(exc.code())
    if isinstance(exc, asyncio.CancelledError):
        return CANCELED
    return UNKNOWN


def _status_of_finished(call: Any) -> Any:
    """The final grpc.StatusCode of a finished call, read without a task switch.

    `code()` is the only public accessor and it is a coroutine; on a finished call it returns without
    suspending, so driving it one step yields the value. Returns None if it ever does suspend.
    """
    step: Coroutine[Any, Any, Any] = call.code()
    try:
        step.send(None)
    except StopIteration as finished:
        return finished.value
    step.close()
    return None


class _CallRecorder:
    """Records the outcome of one call when it finishes."""

    __slots__ = ("_exemplar", "_metrics", "_start", "_unary_response")

    def __init__(self, metrics: MethodMetrics, *, unary_response: bool) -> None:
        self._metrics = metrics
        self._unary_response = unary_response
        self._exemplar = trace_exemplar()
        self._start = perf_counter()

    def failed(self, exc: BaseException) -> None:
        self._finish(_code_of_exception(exc))

    def when_done(self, call: Any) -> None:
        try:
            call.add_done_callback(self._on_done)
        except NotImplementedError:
            # An inner interceptor answered with a plain response (UnaryUnaryCallResponse).
            self._finish(OK)

    def _on_done(self, call: Any) -> None:
        # Runs inside grpc's completion path: an exception here must not reach grpc.
        try:
            status = _status_of_finished(call)
            if status is None:
                asyncio.get_running_loop().create_task(self._finish_later(call))
            else:
                self._finish(go_code_name(status))
        except Exception:
            log.exception("recording gRPC client metrics failed")

    async def _finish_later(self, call: Any) -> None:
        self._finish(go_code_name(await call.code()))

    def _finish(self, code: str) -> None:
        received = 1 if code == OK and self._unary_response else 0
        self._metrics.finish(code, perf_counter() - self._start, self._exemplar, received=received)


class _ClientMetricsInterceptor:
    grpc_type: GrpcType

    def __init__(self, metrics: GrpcClientMetrics) -> None:
        self._metrics = metrics

    def _begin(self, details: Any, *, sent: int) -> MethodMetrics:
        m = self._metrics.method(details.method, self.grpc_type)
        m.start(sent=sent)
        return m


class UnaryUnaryMetricsInterceptor(_ClientMetricsInterceptor, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    grpc_type = UNARY

    async def intercept_unary_unary(
        self, continuation: Continuation, client_call_details: Any, request: Any
    ) -> Any:
        m = self._begin(client_call_details, sent=1)
        recorder = _CallRecorder(m, unary_response=True)
        try:
            call = await continuation(client_call_details, request)
        except BaseException as exc:
            recorder.failed(exc)
            raise
        recorder.when_done(call)
        return call


class UnaryStreamMetricsInterceptor(_ClientMetricsInterceptor, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    grpc_type = SERVER_STREAM

    async def intercept_unary_stream(
        self, continuation: Continuation, client_call_details: Any, request: Any
    ) -> Any:
        m = self._begin(client_call_details, sent=1)
        recorder = _CallRecorder(m, unary_response=False)
        try:
            call = await continuation(client_call_details, request)
        except BaseException as exc:
            recorder.failed(exc)
            raise
        recorder.when_done(call)
        return CountingAsyncIterator(call, m.received)


class StreamUnaryMetricsInterceptor(_ClientMetricsInterceptor, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    grpc_type = CLIENT_STREAM

    async def intercept_stream_unary(
        self, continuation: Continuation, client_call_details: Any, request_iterator: Any
    ) -> Any:
        m = self._begin(client_call_details, sent=0)
        recorder = _CallRecorder(m, unary_response=True)
        try:
            call = await continuation(client_call_details, counting(request_iterator, m.sent))
        except BaseException as exc:
            recorder.failed(exc)
            raise
        recorder.when_done(call)
        return call


class StreamStreamMetricsInterceptor(_ClientMetricsInterceptor, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    grpc_type = BIDI_STREAM

    async def intercept_stream_stream(
        self, continuation: Continuation, client_call_details: Any, request_iterator: Any
    ) -> Any:
        m = self._begin(client_call_details, sent=0)
        recorder = _CallRecorder(m, unary_response=False)
        try:
            call = await continuation(client_call_details, counting(request_iterator, m.sent))
        except BaseException as exc:
            recorder.failed(exc)
            raise
        recorder.when_done(call)
        return CountingAsyncIterator(call, m.received)
