"""The JSON body of PUT /admin/faults, parsed into a FaultState or refused with a reason.

    {"latency": {"min_ms": 600, "max_ms": 900, "methods": ["/order.v1.OrderService/CreateOrder"]},
     "error": {"rate": 0.2, "code": "INTERNAL", "methods": ["GetOrder"]}}

`methods` holds full method names or bare method names; empty or absent means every method except
health checking and reflection. Every way a body can be wrong is an InvalidFaultSpec, never another
exception: the admin endpoint answers it 400 with the message.
"""

from __future__ import annotations

import json
import re
from typing import Final

import grpc

from grpcdemo.faults.model import ErrorFault, FaultState, LatencyFault, MethodFilter

MAX_LATENCY_MS: Final = 60_000.0
MAX_METHODS: Final = 32
MAX_BODY_BYTES: Final = 16 * 1024

_FULL_METHOD = re.compile(r"/[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*")
_SHORT_METHOD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INJECTABLE_CODES: Final = {code.name: code for code in grpc.StatusCode if code is not grpc.StatusCode.OK}


class InvalidFaultSpec(ValueError):
    """The body does not describe a valid fault state; the message says what to fix."""


def parse_body(body: bytes) -> FaultState:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidFaultSpec(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidFaultSpec("body is not UTF-8") from None
    except RecursionError:
        raise InvalidFaultSpec("body is nested too deeply") from None
    except ValueError as error:
        # JSONDecodeError, and the int() limit on huge numbers ("Exceeds the limit (4300 digits)").
        raise InvalidFaultSpec(f"body is not valid JSON: {error}") from None
    return parse_state(data)


def parse_state(data: object) -> FaultState:
    fields = _object(data, "the body", allowed={"latency", "error"}, required=set())
    latency = fields.get("latency")
    error = fields.get("error")
    return FaultState(
        latency=None if latency is None else _latency(latency),
        error=None if error is None else _error(error),
    )


def _object(data: object, where: str, *, allowed: set[str], required: set[str]) -> dict[str, object]:
    if not isinstance(data, dict):
        raise InvalidFaultSpec(f"{where} must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        shown = ", ".join(repr(key)[:40] for key in unknown[:5])
        raise InvalidFaultSpec(f"{where}: unknown key(s) {shown}; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise InvalidFaultSpec(f"{where}: missing key(s) {', '.join(missing)}")
    return data


def _number(value: object, where: str, low: float, high: float) -> float:
    # bool is an int in Python, but `true` is never a meaningful latency or rate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFaultSpec(f"{where} must be a number")
    if not low <= value <= high:
        raise InvalidFaultSpec(f"{where} must be between {low:g} and {high:g}")
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
        if not isinstance(name, str) or not (_FULL_METHOD.fullmatch(name) or _SHORT_METHOD.fullmatch(name)):
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


def _reject_constant(name: str) -> object:
    # json.loads accepts NaN and Infinity by default, and NaN passes no range check.
    raise InvalidFaultSpec(f"{name} is not a valid number")
