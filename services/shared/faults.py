"""Runtime fault injection for chaos drills: added latency and error answers on chosen gRPC methods.

Off by default and in memory only, so a restart always clears it. The interceptor belongs INSIDE
the metrics interceptor (later in the list): an injected fault is then recorded exactly like a real
one, which is what makes the drills exercise the alert rules. The admin handler is refused unless
the service runs with FAULT_INJECTION_ENABLED=true, and then also wants `Authorization: Bearer
<FAULT_INJECTION_TOKEN>` when that variable is set; the metrics port it is served on binds to
127.0.0.1 by default.

State as JSON (PUT /admin/faults replaces it, DELETE clears it, GET shows it):

    {"latency": {"min_ms": 600, "max_ms": 900, "methods": ["/order.v1.OrderService/CreateOrder"]},
     "error": {"rate": 0.2, "code": "INTERNAL", "methods": ["GetOrder"]}}

`methods` holds full method names or bare method names; empty or absent means every method except
health checking and reflection, so a drill does not get the process restarted by its orchestrator.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final

import grpc
from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger(__name__)

ADMIN_PATH: Final = "/admin/faults"
MAX_LATENCY_MS: Final = 60_000.0
MAX_METHODS: Final = 32
MAX_BODY_BYTES: Final = 16 * 1024
KINDS: Final = ("latency", "error")

# Only what orchestrators and tools use to talk to the process itself; named explicitly they can
# still be targeted.
EXEMPT_SERVICE_PREFIXES: Final = ("/grpc.health.", "/grpc.reflection.")

_FULL_METHOD = re.compile(r"^/[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*$")
_SHORT_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_PREFIX = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_INJECTABLE_CODES: Final = {code.name: code for code in grpc.StatusCode if code is not grpc.StatusCode.OK}

# Wrapped handlers are cached per method path; bounded because a catch-all generic handler would
# otherwise grow the cache with every name a client sends.
_MAX_CACHED_HANDLERS: Final = 1024


class InvalidFaultSpec(ValueError):
    """The JSON does not describe a valid fault state; the message says what to fix."""


# ---------------------------------------------------------------------------------------------
# State


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

    @classmethod
    def from_json(cls, data: object) -> FaultState:
        fields = _object(data, "the body", allowed={"latency", "error"}, required=set())
        latency = fields.get("latency")
        error = fields.get("error")
        return cls(
            latency=None if latency is None else _latency(latency),
            error=None if error is None else _error(error),
        )


def _object(data: object, where: str, *, allowed: set[str], required: set[str]) -> dict[str, object]:
    if not isinstance(data, dict):
        raise InvalidFaultSpec(f"{where} must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidFaultSpec(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(data))
    if missing:
        raise InvalidFaultSpec(f"{where}: missing key(s) {', '.join(missing)}")
    return data


def _number(value: object, where: str, low: float, high: float) -> float:
    # bool is an int in Python, but `true` is never a meaningful latency or rate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFaultSpec(f"{where} must be a number")
    if not low <= value <= high:
        raise InvalidFaultSpec(f"{where} must be between {low:g} and {high:g}, got {value}")
    return float(value)


def _methods(value: object, where: str) -> MethodFilter:
    if value is None:
        return MethodFilter()
    if not isinstance(value, list):
        raise InvalidFaultSpec(f"{where} must be a list of method names")
    if len(value) > MAX_METHODS:
        raise InvalidFaultSpec(f"{where} lists more than {MAX_METHODS} methods")
    names = set()
    for index, name in enumerate(value):
        if not isinstance(name, str) or not (_FULL_METHOD.match(name) or _SHORT_METHOD.match(name)):
            raise InvalidFaultSpec(
                f"{where}[{index}] must be a full method name like /order.v1.OrderService/CreateOrder "
                "or a method name like CreateOrder"
            )
        names.add(name)
    return MethodFilter(frozenset(names))


def _latency(data: object) -> LatencyFault:
    fields = _object(data, "latency", allowed={"min_ms", "max_ms", "methods"}, required={"min_ms"})
    min_ms = _number(fields["min_ms"], "latency.min_ms", 0, MAX_LATENCY_MS)
    max_ms = min_ms
    if fields.get("max_ms") is not None:
        max_ms = _number(fields["max_ms"], "latency.max_ms", 0, MAX_LATENCY_MS)
    if max_ms < min_ms:
        raise InvalidFaultSpec(f"latency.max_ms ({max_ms:g}) must not be below latency.min_ms ({min_ms:g})")
    return LatencyFault(min_ms, max_ms, _methods(fields.get("methods"), "latency.methods"))


def _error(data: object) -> ErrorFault:
    fields = _object(data, "error", allowed={"rate", "code", "methods"}, required={"rate", "code"})
    rate = _number(fields["rate"], "error.rate", 0, 1)
    raw_code = fields["code"]
    code = _INJECTABLE_CODES.get(raw_code.upper()) if isinstance(raw_code, str) else None
    if code is None:
        raise InvalidFaultSpec(
            f"error.code must be a gRPC status code name other than OK, e.g. UNAVAILABLE or INTERNAL; "
            f"allowed: {', '.join(sorted(_INJECTABLE_CODES))}"
        )
    return ErrorFault(rate, code, _methods(fields.get("methods"), "error.methods"))


# ---------------------------------------------------------------------------------------------
# Injector


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one call: wait `delay_seconds`, then fail with `code` unless it is None."""

    delay_seconds: float = 0.0
    code: grpc.StatusCode | None = None

    @property
    def message(self) -> str:
        name = self.code.name if self.code is not None else "none"
        return f"injected fault: {name} (fault injection is switched on for this service)"


NO_FAULT: Final = Decision()


class FaultInjector:
    """Per-process fault state plus the `<service>_fault_injection_active{kind}` gauge.

    The admin handler replaces the state from the metrics server's thread while calls read it on the
    event loop; the state is an immutable object swapped in one assignment, so readers never see a
    half-applied change."""

    def __init__(self, service: str, registry: CollectorRegistry, rng: random.Random | None = None) -> None:
        if not _METRIC_PREFIX.match(service):
            raise ValueError(f"service {service!r} is not usable as a metric name prefix")
        self.service = service
        self._rng = rng or random.Random()
        self._state = FaultState()
        gauge = Gauge(
            f"{service}_fault_injection_active",
            "1 while injected faults of this kind are switched on (chaos drills), else 0.",
            ["kind"],
            registry=registry,
        )
        self._gauges = {kind: gauge.labels(kind=kind) for kind in KINDS}
        for child in self._gauges.values():
            child.set(0)

    @property
    def state(self) -> FaultState:
        return self._state

    def set(self, state: FaultState) -> None:
        self._state = state
        active = state.active_kinds()
        for kind, child in self._gauges.items():
            child.set(1 if kind in active else 0)
        if active:
            log.warning("fault injection switched on", extra={"faults": json.dumps(state.to_json())})
        else:
            log.warning("fault injection switched off")

    def clear(self) -> None:
        self.set(FaultState())

    def targets(self, path: str) -> bool:
        """Whether any active fault could apply to `path` (a cheap check made before wrapping)."""
        state = self._state
        return bool(
            (state.latency is not None and state.latency.active and state.latency.methods.matches(path))
            or (state.error is not None and state.error.active and state.error.methods.matches(path))
        )

    def decide(self, path: str) -> Decision:
        state = self._state
        delay = 0.0
        code = None
        latency, error = state.latency, state.error
        if latency is not None and latency.active and latency.methods.matches(path):
            delay = self._rng.uniform(latency.min_ms, latency.max_ms) / 1000
        if (
            error is not None
            and error.active
            and error.methods.matches(path)
            and self._rng.random() < error.rate
        ):
            code = error.code
        if delay == 0 and code is None:
            return NO_FAULT
        return Decision(delay, code)


# ---------------------------------------------------------------------------------------------
# Server interceptor

Behavior = Callable[..., Any]


class FaultInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Applies the injector's decision before the handler runs: sleep, then abort with the code.

    Place it after (inside) the metrics interceptor. Handlers of methods no active fault targets are
    returned untouched, so with faults off the cost is one check per call."""

    def __init__(self, injector: FaultInjector) -> None:
        self._injector = injector
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        raw = handler_call_details.method
        path = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if handler is None or not self._injector.targets(path):
            return handler
        cached = self._wrapped.get(path)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap_handler(handler, lambda: self._injector.decide(path))
        with self._lock:
            if path in self._wrapped or len(self._wrapped) < _MAX_CACHED_HANDLERS:
                self._wrapped[path] = (handler, wrapped)
        return wrapped


def _wrap_handler(handler: Any, decide: Callable[[], Decision]) -> Any:
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_wrap(handler.unary_unary, decide), **serializers)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_wrap(handler.unary_stream, decide), **serializers)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_wrap(handler.stream_unary, decide), **serializers)
    return grpc.stream_stream_rpc_method_handler(_wrap(handler.stream_stream, decide), **serializers)


def _wrap(behavior: Behavior, decide: Callable[[], Decision]) -> Behavior:
    """Wrappers keep the kind of the wrapped behaviour: grpc.aio dispatches on it, and a sync handler
    wrapped in `async def` would get an async context whose un-awaited `abort()` does nothing."""
    if inspect.isasyncgenfunction(behavior):

        async def inject_then_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await _inject(decide(), context)
            async with aclosing(behavior(request, context)) as responses:
                async for response in responses:
                    yield response

        return inject_then_stream
    if inspect.iscoroutinefunction(behavior):

        async def inject_then_call(request: Any, context: Any) -> Any:
            await _inject(decide(), context)
            return await behavior(request, context)

        return inject_then_call
    if inspect.isgeneratorfunction(behavior):

        def inject_then_stream_sync(request: Any, context: Any) -> Iterator[Any]:
            _inject_sync(decide(), context)
            yield from behavior(request, context)

        return inject_then_stream_sync

    def inject_then_call_sync(request: Any, context: Any) -> Any:
        _inject_sync(decide(), context)
        return behavior(request, context)

    return inject_then_call_sync


async def _inject(decision: Decision, context: Any) -> None:
    if decision.delay_seconds > 0:
        # Cancelled like any handler when the caller's deadline passes during the sleep.
        await asyncio.sleep(decision.delay_seconds)
    if decision.code is not None:
        await context.abort(decision.code, decision.message)


def _inject_sync(decision: Decision, context: Any) -> None:
    # Sync handlers run on grpc's thread pool, where blocking is what they do anyway.
    if decision.delay_seconds > 0:
        time.sleep(decision.delay_seconds)
    if decision.code is not None:
        context.abort(decision.code, decision.message)


# ---------------------------------------------------------------------------------------------
# Admin HTTP handler

AdminResponse = tuple[int, dict[str, Any]]


class FaultAdmin:
    """`handle()` answers GET/PUT/DELETE on /admin/faults for an HTTP server to route to: it returns
    the status and a JSON-serialisable body and never raises for bad input. `enabled` and `token`
    come from FAULT_INJECTION_ENABLED and FAULT_INJECTION_TOKEN (read with the service's config)."""

    def __init__(self, injector: FaultInjector, *, enabled: bool, token: str | None = None) -> None:
        self._injector = injector
        self.enabled = enabled
        self._token = token.encode() if token else None
        if enabled and self._token is None:
            log.warning(
                "fault injection admin is enabled without FAULT_INJECTION_TOKEN: anyone who can reach "
                "the metrics port can inject faults (it binds to 127.0.0.1 unless METRICS_ADDR says otherwise)"
            )

    @staticmethod
    def handles(path: str) -> bool:
        return path.partition("?")[0].rstrip("/") == ADMIN_PATH

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> AdminResponse:
        if not self.handles(path):
            return 404, {"error": f"not found; the fault injection admin endpoint is {ADMIN_PATH}"}
        if not self.enabled:
            return 403, {
                "error": "fault injection is disabled on this service; "
                "start it with FAULT_INJECTION_ENABLED=true to use it"
            }
        refused = self._check_token(headers)
        if refused is not None:
            return refused
        verb = method.upper()
        if verb == "GET":
            return 200, self._injector.state.to_json()
        if verb == "DELETE":
            self._injector.clear()
            return 200, self._injector.state.to_json()
        if verb == "PUT":
            return self._put(body)
        return 405, {"error": f"method {verb} not allowed; use GET, PUT or DELETE"}

    def _check_token(self, headers: Mapping[str, str]) -> AdminResponse | None:
        if self._token is None:
            return None
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if value is None:
            return 401, {"error": "missing `Authorization: Bearer <FAULT_INJECTION_TOKEN>` header"}
        scheme, _, presented = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self._token):
            return 403, {"error": "wrong fault injection token"}
        return None

    def _put(self, body: bytes) -> AdminResponse:
        if len(body) > MAX_BODY_BYTES:
            return 413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"}
        try:
            data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
            state = FaultState.from_json(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return 400, {"error": f"body is not valid JSON: {error}"}
        except InvalidFaultSpec as error:
            return 400, {"error": str(error)}
        self._injector.set(state)
        return 200, state.to_json()


def _reject_constant(name: str) -> object:
    # json.loads accepts NaN and Infinity by default, and NaN passes no range check.
    raise InvalidFaultSpec(f"{name} is not a valid number")


__all__ = [
    "ADMIN_PATH",
    "Decision",
    "ErrorFault",
    "FaultAdmin",
    "FaultInjector",
    "FaultInterceptor",
    "FaultState",
    "InvalidFaultSpec",
    "LatencyFault",
    "MethodFilter",
]
