"""A grpc.aio server interceptor recording `grpc_server_*` metrics with the status code the client
really receives.

The status is derived from what the handler did (see `server_status`), since grpc.aio reports the
outcome to a wrapping interceptor only indirectly.

Wrappers keep the kind of the wrapped behaviour (coroutine, async generator, plain function,
generator): grpc dispatches on it, and a sync handler wrapped in `async def` silently loses `abort()`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from time import perf_counter
from typing import Any, Final

import grpc

from shared.observability.counting import CountingAsyncIterator, CountingIterator
from shared.observability.grpc_metrics import GrpcServerMetrics, MethodMetrics
from shared.observability.grpc_names import DEADLINE_EXCEEDED, OK, grpc_type_of
from shared.observability.server_status import (
    code_of_none_response,
    code_on_exception,
    code_on_interruption,
    code_on_return,
    deadline_passed,
)
from shared.observability.trace_context import trace_exemplar

# Wrapped handlers are cached per method path; a catch-all generic handler could otherwise grow the
# cache with every name a client sends.
_MAX_CACHED_HANDLERS: Final = 1024

Behavior = Callable[..., Any]
Serializer = Callable[[Any], bytes] | None


class ServerMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Put it after (inside) the tracing interceptor so the server span is current when recording."""

    def __init__(self, metrics: GrpcServerMetrics) -> None:
        self._metrics = metrics
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            # grpc answers Unimplemented before any handler runs; recording it would let any client
            # invent label values.
            return None
        path: str = handler_call_details.method
        cached = self._wrapped.get(path)
        if cached is not None and cached[0] is handler:
            return cached[1]
        grpc_type = grpc_type_of(handler.request_streaming, handler.response_streaming)
        wrapped = wrap_handler(handler, self._metrics.method(path, grpc_type))
        # Called on the event loop only; the bound is approximate by design.
        if path in self._wrapped or len(self._wrapped) < _MAX_CACHED_HANDLERS:
            self._wrapped[path] = (handler, wrapped)
        return wrapped


def wrap_handler(handler: Any, metrics: MethodMetrics) -> Any:
    """A new RpcMethodHandler whose behaviour records into `metrics`."""
    request_streaming: bool = handler.request_streaming
    if not handler.response_streaming:
        if request_streaming:
            return grpc.stream_unary_rpc_method_handler(
                _unary_response(
                    handler.stream_unary, metrics, handler.response_serializer, request_streaming=True
                ),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            _unary_response(
                handler.unary_unary, metrics, handler.response_serializer, request_streaming=False
            ),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if request_streaming:
        return grpc.stream_stream_rpc_method_handler(
            _stream_response(handler.stream_stream, metrics, request_streaming=True),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_stream_rpc_method_handler(
        _stream_response(handler.unary_stream, metrics, request_streaming=False),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _is_async(behavior: Behavior) -> bool:
    # The same test grpc.aio applies to pick between the event loop and its thread pool.
    return (
        inspect.isawaitable(behavior)
        or inspect.iscoroutinefunction(behavior)
        or inspect.isasyncgenfunction(behavior)
    )


# ---------------------------------------------------------------------------------------------
# Message counting


class _CountingContext:
    """Servicer context of an async streaming handler: counts `read()`/`write()`, the reader/writer
    API grpc.aio offers besides iterators."""

    __slots__ = ("_context", "_metrics")

    def __init__(self, context: Any, metrics: MethodMetrics) -> None:
        self._context = context
        self._metrics = metrics

    async def read(self) -> Any:
        message = await self._context.read()
        if message is not grpc.aio.EOF:
            self._metrics.received()
        return message

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._metrics.sent()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _SyncCodeTracker:
    """Servicer context of a sync handler. grpc.aio's sync context has no `code()`, so the code the
    handler sets or aborts with is remembered on the way through."""

    __slots__ = ("_context", "code_set")

    def __init__(self, context: Any) -> None:
        self._context = context
        self.code_set: object = None

    def set_code(self, code: Any) -> None:
        self.code_set = code
        self._context.set_code(code)

    def abort(self, code: Any, details: str = "", trailing_metadata: tuple[Any, ...] = ()) -> None:
        self.code_set = code
        self._context.abort(code, details, trailing_metadata)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


# ---------------------------------------------------------------------------------------------
# Unary responses (unary_unary, stream_unary)


def _unary_response(
    behavior: Behavior, metrics: MethodMetrics, serializer: Serializer, *, request_streaming: bool
) -> Behavior:
    if _is_async(behavior):
        return _async_unary_response(behavior, metrics, serializer, request_streaming)
    return _sync_unary_response(behavior, metrics, serializer, request_streaming)


def _async_unary_response(
    behavior: Behavior, m: MethodMetrics, serializer: Serializer, request_streaming: bool
) -> Behavior:
    async def record_unary_response(request: Any, context: Any) -> Any:
        if request_streaming:
            m.start()
            request = CountingAsyncIterator(request, m.received)
            context = _CountingContext(context, m)
        else:
            m.start(received=1)
        exemplar = trace_exemplar()
        start = perf_counter()
        try:
            response = await behavior(request, context)
        except asyncio.CancelledError:
            m.finish(code_on_interruption(context.time_remaining()), perf_counter() - start, exemplar)
            raise
        except BaseException as exc:
            m.finish(code_on_exception(exc, context.code()), perf_counter() - start, exemplar)
            raise
        code = code_on_return(context.code())
        if code == OK and response is None:
            code = code_of_none_response(serializer)
        m.finish(code, perf_counter() - start, exemplar, sent=1 if code == OK else 0)
        return response

    return record_unary_response


def _sync_unary_response(
    behavior: Behavior, m: MethodMetrics, serializer: Serializer, request_streaming: bool
) -> Behavior:
    def record_sync_unary_response(request: Any, context: Any) -> Any:
        tracker = _SyncCodeTracker(context)
        if request_streaming:
            m.start()
            request = CountingIterator(request, m.received)
        else:
            m.start(received=1)
        exemplar = trace_exemplar()
        start = perf_counter()
        try:
            response = behavior(request, tracker)
        except BaseException as exc:
            code = (
                DEADLINE_EXCEEDED
                if deadline_passed(context.time_remaining())
                else code_on_exception(exc, tracker.code_set)
            )
            m.finish(code, perf_counter() - start, exemplar)
            raise
        # The handler's thread is never interrupted: a deadline that passed meanwhile already ended
        # the call for the client, whatever the handler returns now.
        if deadline_passed(context.time_remaining()):
            code = DEADLINE_EXCEEDED
        else:
            code = code_on_return(tracker.code_set)
            if code == OK and response is None:
                code = code_of_none_response(serializer)
        m.finish(code, perf_counter() - start, exemplar, sent=1 if code == OK else 0)
        return response

    return record_sync_unary_response


# ---------------------------------------------------------------------------------------------
# Streamed responses (unary_stream, stream_stream)


def _stream_response(behavior: Behavior, metrics: MethodMetrics, *, request_streaming: bool) -> Behavior:
    if inspect.isasyncgenfunction(behavior):
        return _async_generator_response(behavior, metrics, request_streaming)
    if inspect.iscoroutinefunction(behavior):
        return _writer_response(behavior, metrics, request_streaming)
    return _sync_generator_response(behavior, metrics, request_streaming)


def _async_generator_response(behavior: Behavior, m: MethodMetrics, request_streaming: bool) -> Behavior:
    async def record_async_generator_response(request: Any, context: Any) -> AsyncIterator[Any]:
        if request_streaming:
            m.start()
            request = CountingAsyncIterator(request, m.received)
        else:
            m.start(received=1)
        counting_context = _CountingContext(context, m)
        exemplar = trace_exemplar()
        start = perf_counter()
        responses = behavior(request, counting_context)
        try:
            async for response in responses:
                yield response
                # Resumed only once grpc wrote the message and asks for the next one.
                m.sent()
        except (asyncio.CancelledError, GeneratorExit):
            # GeneratorExit: grpc stopped consuming (its task was cancelled while writing) and the
            # event loop is finalising this generator.
            m.finish(code_on_interruption(context.time_remaining()), perf_counter() - start, exemplar)
            raise
        except BaseException as exc:
            m.finish(code_on_exception(exc, context.code()), perf_counter() - start, exemplar)
            raise
        else:
            m.finish(code_on_return(context.code()), perf_counter() - start, exemplar)
        finally:
            await responses.aclose()

    return record_async_generator_response


def _writer_response(behavior: Behavior, m: MethodMetrics, request_streaming: bool) -> Behavior:
    async def record_writer_response(request: Any, context: Any) -> None:
        if request_streaming:
            m.start()
            request = CountingAsyncIterator(request, m.received)
        else:
            m.start(received=1)
        exemplar = trace_exemplar()
        start = perf_counter()
        try:
            await behavior(request, _CountingContext(context, m))
        except asyncio.CancelledError:
            m.finish(code_on_interruption(context.time_remaining()), perf_counter() - start, exemplar)
            raise
        except BaseException as exc:
            m.finish(code_on_exception(exc, context.code()), perf_counter() - start, exemplar)
            raise
        m.finish(code_on_return(context.code()), perf_counter() - start, exemplar)

    return record_writer_response


def _sync_generator_response(behavior: Behavior, m: MethodMetrics, request_streaming: bool) -> Behavior:
    def record_sync_generator_response(request: Any, context: Any) -> Iterator[Any]:
        tracker = _SyncCodeTracker(context)
        if request_streaming:
            m.start()
            request = CountingIterator(request, m.received)
        else:
            m.start(received=1)
        exemplar = trace_exemplar()
        start = perf_counter()
        try:
            for response in behavior(request, tracker):
                yield response
                m.sent()
        except GeneratorExit:
            m.finish(code_on_interruption(context.time_remaining()), perf_counter() - start, exemplar)
            raise
        except BaseException as exc:
            code = (
                DEADLINE_EXCEEDED
                if deadline_passed(context.time_remaining())
                else code_on_exception(exc, tracker.code_set)
            )
            m.finish(code, perf_counter() - start, exemplar)
            raise
        else:
            code = (
                DEADLINE_EXCEEDED
                if deadline_passed(context.time_remaining())
                else code_on_return(tracker.code_set)
            )
            m.finish(code, perf_counter() - start, exemplar)

    return record_sync_generator_response
