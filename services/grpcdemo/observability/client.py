"""grpc.aio client interceptors: the client span and the `grpc_client_*` metrics of every call,
failed ones included, in one interceptor per call kind.

The final status is read from the call's done callback, never by awaiting the call: awaiting raises
on any non-OK status (and would block a client-streaming caller that writes after the interceptor
returns). The callback fires before the caller's `await` returns, so the metrics are up to date when
the caller sees the result.

grpc.aio files an interceptor under the first of the four kinds it is an instance of, so each kind
is a separate object; `client_interceptors()` returns all four. Put them on the channel:
`grpc.aio.insecure_channel(target, interceptors=client_interceptors(metrics, spans))`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from time import perf_counter
from typing import Any

import grpc
from opentelemetry.trace import Span

from grpcdemo.observability.counting import CountingAsyncIterator, counting
from grpcdemo.observability.grpc_metrics import GrpcClientMetrics, MethodMetrics
from grpcdemo.observability.grpc_names import (
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
from grpcdemo.observability.trace_context import trace_exemplar
from grpcdemo.observability.tracing import ClientSpans

log = logging.getLogger(__name__)

Continuation = Callable[[Any, Any], Awaitable[Any]]


def client_interceptors(metrics: GrpcClientMetrics, spans: ClientSpans | None = None) -> list[Any]:
    """One interceptor per call kind, each recording metrics and (with `spans`) the client span."""
    return [
        UnaryUnaryInterceptor(metrics, spans),
        UnaryStreamInterceptor(metrics, spans),
        StreamUnaryInterceptor(metrics, spans),
        StreamStreamInterceptor(metrics, spans),
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
    """Records the outcome of one call, metrics and span, when it finishes."""

    __slots__ = ("_exemplar", "_metrics", "_span", "_start", "_unary_response")

    def __init__(self, metrics: MethodMetrics, span: Span | None, *, unary_response: bool) -> None:
        self._metrics = metrics
        self._span = span
        self._unary_response = unary_response
        self._exemplar = trace_exemplar(span)
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
            log.exception("recording a gRPC client call failed")

    async def _finish_later(self, call: Any) -> None:
        self._finish(go_code_name(await call.code()))

    def _finish(self, code: str) -> None:
        received = 1 if code == OK and self._unary_response else 0
        self._metrics.finish(code, perf_counter() - self._start, self._exemplar, received=received)
        if self._span is not None:
            ClientSpans.end(self._span, code)


class _ClientInterceptor:
    grpc_type: GrpcType
    unary_response: bool

    def __init__(self, metrics: GrpcClientMetrics, spans: ClientSpans | None) -> None:
        self._metrics = metrics
        self._spans = spans

    def _begin(self, details: Any, *, sent: int) -> tuple[MethodMetrics, _CallRecorder, Any]:
        path = details.method
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        m = self._metrics.method(path, self.grpc_type)
        m.start(sent=sent)
        span = None
        if self._spans is not None:
            metadata = list(details.metadata or ())
            span = self._spans.start(path, metadata)
            details = grpc.aio.ClientCallDetails(
                details.method,
                details.timeout,
                grpc.aio.Metadata(*metadata),
                details.credentials,
                details.wait_for_ready,
            )
        return m, _CallRecorder(m, span, unary_response=self.unary_response), details

    async def _call(self, continuation: Continuation, details: Any, request: Any, *, sent: int) -> Any:
        m, recorder, details = self._begin(details, sent=sent)
        if sent == 0:
            request = counting(request, m.sent)
        try:
            call = await continuation(details, request)
        except BaseException as exc:
            recorder.failed(exc)
            raise
        recorder.when_done(call)
        return call if self.unary_response else CountingAsyncIterator(call, m.received)


class UnaryUnaryInterceptor(_ClientInterceptor, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    grpc_type = UNARY
    unary_response = True

    async def intercept_unary_unary(
        self, continuation: Continuation, client_call_details: Any, request: Any
    ) -> Any:
        return await self._call(continuation, client_call_details, request, sent=1)


class UnaryStreamInterceptor(_ClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    grpc_type = SERVER_STREAM
    unary_response = False

    async def intercept_unary_stream(
        self, continuation: Continuation, client_call_details: Any, request: Any
    ) -> Any:
        return await self._call(continuation, client_call_details, request, sent=1)


class StreamUnaryInterceptor(_ClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    grpc_type = CLIENT_STREAM
    unary_response = True

    async def intercept_stream_unary(
        self, continuation: Continuation, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await self._call(continuation, client_call_details, request_iterator, sent=0)


class StreamStreamInterceptor(_ClientInterceptor, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    grpc_type = BIDI_STREAM
    unary_response = False

    async def intercept_stream_stream(
        self, continuation: Continuation, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await self._call(continuation, client_call_details, request_iterator, sent=0)
