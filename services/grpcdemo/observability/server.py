"""The one handler wrapper: what happens to every call a grpc.aio server answers, in one place.

`HandlerWrapper.wrap` is called once per method, at registration (`InstrumentedServer` routes every
`add_generic_rpc_handlers` / `add_registered_method_handlers` through it), and returns a handler
whose behaviour runs, per call, in this fixed order (outermost first):

1. tracing: the server span, child of the caller's `traceparent`, current for the whole call
   (exemplars and log lines name it); not for health checking and reflection;
2. metrics: started, in flight and received now; code, latency and sent at the end;
3. admission: a request whose bytes did not decode answers INVALID_ARGUMENT (grpc.aio decodes before
   any interceptor or handler runs, so the request deserializer is wrapped to hand the failure in
   here instead of answering UNKNOWN uncounted); a call beyond `max_concurrent` answers
   RESOURCE_EXHAUSTED (health and reflection are exempt);
4. the before-call hook (fault injection): may wait, then may abort with a code;
5. the handler; an exception it raises is given to the error hook (error mapping), whose
   (code, message) the call is aborted with.

Because 3-5 run inside 2, the code recorded is the code the caller received, whatever produced it;
because 2 runs inside 1, every recorded latency can carry its trace as an exemplar. The metrics and
tracing parts only record (reporters, as in go-grpc-middleware); the hooks are plain callables, so
this module imports nothing of the services, of fault injection or of error mapping.

Async handlers (coroutines, async generators, coroutines writing with `context.write`) are wrapped.
A sync handler is handed back untouched and is not measured: grpc.aio runs it on its thread pool,
and an async wrapper would turn its `abort()` into an un-awaited coroutine. On a grpc.aio server the
only sync handlers are normally the generated base class's "unimplemented" stubs (grpc_health's aio
servicer leaves `Health/List` to one).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from time import perf_counter
from typing import Any, Final, Protocol

import grpc

from grpcdemo.observability.counting import CountingAsyncIterator
from grpcdemo.observability.grpc_metrics import GrpcServerMetrics, MethodMetrics
from grpcdemo.observability.grpc_names import OK, go_code_name, grpc_type_of
from grpcdemo.observability.server_status import (
    code_of_none_response,
    code_on_exception,
    code_on_interruption,
    code_on_return,
)
from grpcdemo.observability.trace_context import trace_exemplar
from grpcdemo.observability.tracing import ServerSpans, traced

log = logging.getLogger(__name__)

Behavior = Callable[..., Any]

# Infrastructure every orchestrator talks to: never refused for capacity, never traced.
_EXEMPT_PREFIXES: Final = ("/grpc.health.", "/grpc.reflection.")

# A catch-all generic handler could otherwise grow the cache with every name a client sends.
_MAX_CACHED_HANDLERS: Final = 1024


class Intervention(Protocol):
    """What the before-call hook asks for: wait `delay_seconds`, then abort with `code` unless None."""

    @property
    def delay_seconds(self) -> float: ...

    @property
    def code(self) -> grpc.StatusCode | None: ...

    @property
    def message(self) -> str: ...


BeforeCall = Callable[[str], Intervention | None]
"""Called with the method path before the handler; None (the common case) means nothing to do."""

ErrorMapper = Callable[[str, Exception], tuple[grpc.StatusCode, str]]
"""Called with the method path and what the handler raised (not an abort); returns the status to
answer with. It logs what needs logging; its message goes to the caller."""


class UndecodableRequest:
    """Stands in for a request message whose bytes did not decode."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


class UndecodableMessage(Exception):
    """Raised from a request stream when one of its messages did not decode."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"request is not a valid {type_name} message")
        self.type_name = type_name


def undecodable_message(type_name: str) -> str:
    # Fixed text: names the expected type, and no parser detail or class name of this server.
    return f"request is not a valid {type_name} message"


def _message_type_name(deserializer: Callable[[bytes], Any] | None) -> str:
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "request"))


def tolerant_deserializer(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer` that returns an UndecodableRequest instead of raising."""
    if deserializer is None:
        return None
    type_name = _message_type_name(deserializer)
    undecodable = UndecodableRequest(type_name)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return undecodable

    return deserialize


class _ThrottledWarning:
    """One WARNING line per `interval` at most, with the count of those left out: a flood of garbage
    must not become a flood of log lines."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0) -> None:
        self._logger = logger
        self._interval = interval
        self._next = 0.0
        self._suppressed = 0

    def __call__(self, message: str, **extra: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        if self._suppressed:
            extra["suppressed"] = self._suppressed
        self._suppressed = 0
        self._next = now + self._interval
        self._logger.warning(message, extra=extra)


class _CallContext:
    """The servicer context a wrapped handler sees: the real one, except that

    - `abort()` records the call's outcome before grpc sends the status (grpc.aio sends it inside
      `abort()`, so a wrapper recording afterwards would let the caller see the status, and scrape,
      before the metrics have it);
    - `read()` and `write()`, the reader/writer API grpc.aio offers for streams besides iterators,
      count their messages.

    The wrapper's own aborts (admission, faults, error mapping) go through it too."""

    __slots__ = ("_context", "_exemplar", "_m", "_start", "settled")

    def __init__(self, context: Any, m: MethodMetrics, exemplar: dict[str, str] | None) -> None:
        self._context = context
        self._m = m
        self._exemplar = exemplar
        self._start = perf_counter()
        self.settled = False

    def settle(self, code: str, sent: int = 0) -> None:
        """Records the call's end once; later calls do nothing."""
        if not self.settled:
            self.settled = True
            self._m.finish(code, perf_counter() - self._start, self._exemplar, sent=sent)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = None) -> None:
        self.settle(go_code_name(code))
        if trailing_metadata is None:
            await self._context.abort(code, details)
        else:
            await self._context.abort(code, details, trailing_metadata)

    async def abort_with_status(self, status: Any) -> None:
        await self.abort(status.code, status.details, status.trailing_metadata)

    async def read(self) -> Any:
        message = await self._context.read()
        if message is grpc.aio.EOF:
            return message
        if isinstance(message, UndecodableRequest):
            raise UndecodableMessage(message.type_name)
        self._m.received()
        return message

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._m.sent()

    # The methods handlers call on every request, without __getattr__'s detour.
    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def time_remaining(self) -> float | None:
        remaining: float | None = self._context.time_remaining()
        return remaining

    def code(self) -> Any:
        return self._context.code()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _CheckedRequests(CountingAsyncIterator):
    """A request stream that counts messages and raises UndecodableMessage for one that did not decode."""

    __slots__ = ()

    async def __anext__(self) -> Any:
        message = await super().__anext__()
        if isinstance(message, UndecodableRequest):
            raise UndecodableMessage(message.type_name)
        return message


class HandlerWrapper:
    """Builds the per-method wrapper described in the module docstring. One per server."""

    def __init__(
        self,
        metrics: GrpcServerMetrics,
        spans: ServerSpans | None = None,
        *,
        before_call: BeforeCall | None = None,
        map_error: ErrorMapper | None = None,
        max_concurrent: int | None = None,
    ) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._metrics = metrics
        self._spans = spans
        self._before_call = before_call
        self._map_error = map_error
        self._max_concurrent = max_concurrent
        self._active = 0
        self._warn = _ThrottledWarning(log)

    @property
    def active_calls(self) -> int:
        """Calls admitted and not yet finished (health and reflection not counted)."""
        return self._active

    # -- registration ------------------------------------------------------------------------------

    def wrap(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The wrapped handler of `path`; the method's series exist (at zero) from now on."""
        behavior = (
            handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
        )
        if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
            log.debug("sync handler left unwrapped", extra={"grpc_method": path})
            return handler
        grpc_type = grpc_type_of(handler.request_streaming, handler.response_streaming)
        m = self._metrics.method(path, grpc_type)
        m.ensure_code(OK)
        deserializer = tolerant_deserializer(handler.request_deserializer)
        serializer = handler.response_serializer
        exempt = path.startswith(_EXEMPT_PREFIXES)
        spans = self._spans if traced(path) else None
        if not handler.response_streaming:
            factory = (
                grpc.stream_unary_rpc_method_handler
                if handler.request_streaming
                else grpc.unary_unary_rpc_method_handler
            )
            wrapped = self._coroutine(
                path, behavior, m, spans, exempt, handler.request_streaming, serializer, writer_stream=False
            )
        else:
            factory = (
                grpc.stream_stream_rpc_method_handler
                if handler.request_streaming
                else grpc.unary_stream_rpc_method_handler
            )
            if inspect.isasyncgenfunction(behavior):
                wrapped = self._generator(path, behavior, m, spans, exempt, handler.request_streaming)
            else:
                # A writer-style stream (a coroutine that calls context.write), e.g. Health/Watch.
                wrapped = self._coroutine(
                    path, behavior, m, spans, exempt, handler.request_streaming, None, writer_stream=True
                )
        return factory(wrapped, request_deserializer=deserializer, response_serializer=serializer)

    # -- per call ----------------------------------------------------------------------------------

    async def _admit(self, path: str, request: Any, context: Any, exempt: bool) -> None:
        """Steps 3 and 4: aborts (raising AbortError) or returns to let the handler run."""
        if isinstance(request, UndecodableRequest):
            self._warn("undecodable request refused", grpc_method=path, expected=request.type_name)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, undecodable_message(request.type_name))
        if not exempt and self._max_concurrent is not None and self._active > self._max_concurrent:
            self._warn("call refused: concurrency limit reached", grpc_method=path)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "server is at its concurrency limit; retry later"
            )
        if self._before_call is not None:
            decision = self._before_call(path)
            if decision is not None:
                if decision.delay_seconds > 0:
                    # Cancelled like any handler when the caller's deadline passes during the sleep.
                    await asyncio.sleep(decision.delay_seconds)
                if decision.code is not None:
                    await context.abort(decision.code, decision.message)

    async def _on_error(self, path: str, exc: Exception, context: Any) -> None:
        """Step 5's error hook: aborts with the mapped status (grpc would answer UNKNOWN otherwise).
        A handler that set a status code itself before raising gets that code, as grpc sends it."""
        if isinstance(exc, UndecodableMessage):
            self._warn("undecodable request refused", grpc_method=path, expected=exc.type_name)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        code_set = context.code()
        if code_set is not None and code_set != grpc.StatusCode.OK:
            return
        if self._map_error is not None:
            code, message = self._map_error(path, exc)
            await context.abort(code, message)

    def _coroutine(
        self,
        path: str,
        behavior: Behavior,
        m: MethodMetrics,
        spans: ServerSpans | None,
        exempt: bool,
        request_streaming: bool,
        serializer: Callable[[Any], bytes] | None,
        *,
        writer_stream: bool,
    ) -> Behavior:
        """Unary and client-stream handlers, and writer-style response streams (`writer_stream`)."""
        counts_writes = writer_stream

        async def handle(request: Any, context: Any) -> Any:
            if spans is not None:
                span, token = spans.start(path, context.invocation_metadata())
            if request_streaming:
                m.start()
                request = _CheckedRequests(request, m.received)
            else:
                m.start(received=1)
            call = _CallContext(context, m, trace_exemplar())
            if not exempt:
                self._active += 1
            code = OK
            try:
                await self._admit(path, request, call, exempt)
                try:
                    response = await behavior(request, call)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._on_error(path, exc, call)
                    raise
            except asyncio.CancelledError:
                code = code_on_interruption(context.time_remaining())
                raise
            except BaseException as exc:
                code = code_on_exception(exc, context.code())
                raise
            else:
                code = code_on_return(context.code())
                if code == OK and not counts_writes and response is None:
                    code = code_of_none_response(serializer)
                return response
            finally:
                if not exempt:
                    self._active -= 1
                call.settle(code, sent=1 if code == OK and not counts_writes else 0)
                if spans is not None:
                    spans.end(span, token, code)

        return handle

    def _generator(
        self,
        path: str,
        behavior: Behavior,
        m: MethodMetrics,
        spans: ServerSpans | None,
        exempt: bool,
        request_streaming: bool,
    ) -> Behavior:
        """Response streams written by an async generator."""

        async def handle_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if spans is not None:
                span, token = spans.start(path, context.invocation_metadata())
            if request_streaming:
                m.start()
                request = _CheckedRequests(request, m.received)
            else:
                m.start(received=1)
            call = _CallContext(context, m, trace_exemplar())
            if not exempt:
                self._active += 1
            code = OK
            try:
                await self._admit(path, request, call, exempt)
                responses = behavior(request, call)
                try:
                    async for response in responses:
                        # Counted when handed to grpc, as grpc-go counts what SendMsg accepted: a
                        # client that cancels right after reading it closes this generator at the
                        # `yield`, which would otherwise never resume to count a message it received.
                        m.sent()
                        yield response
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._on_error(path, exc, call)
                    raise
                finally:
                    await responses.aclose()
            except (asyncio.CancelledError, GeneratorExit):
                # GeneratorExit: grpc stopped consuming (its task was cancelled while writing) and
                # the event loop is finalising this generator.
                code = code_on_interruption(context.time_remaining())
                raise
            except BaseException as exc:
                code = code_on_exception(exc, context.code())
                raise
            else:
                code = code_on_return(context.code())
            finally:
                if not exempt:
                    self._active -= 1
                call.settle(code)
                if spans is not None:
                    spans.end(span, token, code)

        return handle_stream

    # -- generic handlers --------------------------------------------------------------------------

    def wrap_generic(self, generic: grpc.GenericRpcHandler) -> grpc.GenericRpcHandler:
        return _WrappedGenericHandler(generic, self)


class _WrappedGenericHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler (looked up per call) whose answers are wrapped once per method path."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrapper: HandlerWrapper) -> None:
        self._inner = inner
        self._wrapper = wrapper
        self._cache: dict[str, tuple[Any, Any]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            # grpc answers Unimplemented; recording it would let any client invent label values.
            return None
        path = handler_call_details.method
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        cached = self._cache.get(path)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrapper.wrap(path, handler)
        if path in self._cache or len(self._cache) < _MAX_CACHED_HANDLERS:
            self._cache[path] = (handler, wrapped)
        return wrapped


class InstrumentedServer(grpc.aio.Server):  # type: ignore[misc]
    """A grpc.aio.Server whose registrations pass through `wrapper`; everything else is the real
    server's. Hand it to generated `add_*Servicer_to_server` functions, health and reflection."""

    def __init__(self, server: grpc.aio.Server, wrapper: HandlerWrapper) -> None:
        self.server = server
        self._wrapper = wrapper

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.server.add_generic_rpc_handlers([self._wrapper.wrap_generic(h) for h in generic_rpc_handlers])

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.server.add_registered_method_handlers(
            service_name,
            {
                method: self._wrapper.wrap(f"/{service_name}/{method}", handler)
                for method, handler in method_handlers.items()
            },
        )

    def add_insecure_port(self, address: str) -> int:
        return int(self.server.add_insecure_port(address))

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return int(self.server.add_secure_port(address, server_credentials))

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace: float | None) -> None:
        await self.server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - grpc.aio.Server API
        return bool(await self.server.wait_for_termination(timeout))
