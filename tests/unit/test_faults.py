"""Fault injection state, decisions, gauge and admin handler, without a server."""

from __future__ import annotations

import json
import random
from typing import Any

import grpc
import pytest
from grpcdemo.faults import (
    Decision,
    ErrorFault,
    FaultAdmin,
    FaultInjector,
    FaultState,
    InvalidFaultSpec,
    LatencyFault,
    MethodFilter,
    parse_state,
)
from prometheus_client import CollectorRegistry

CREATE = "/order.v1.OrderService/CreateOrder"
GET = "/order.v1.OrderService/GetOrder"
HEALTH = "/grpc.health.v1.Health/Check"
TOKEN = "t0ken-" + "x" * 20


def injector(seed: int = 7) -> tuple[FaultInjector, CollectorRegistry]:
    registry = CollectorRegistry()
    return FaultInjector("orderd", registry, rng=random.Random(seed)), registry


def gauge(registry: CollectorRegistry, kind: str) -> float | None:
    return registry.get_sample_value("orderd_fault_injection_active", {"kind": kind})


def decide(faults: FaultInjector, path: str) -> Decision:
    """The decision for one call; the injector says None for "nothing to do"."""
    return faults.decide(path) or Decision()


def put(admin: FaultAdmin, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return admin.handle("PUT", "/admin/faults", headers or {}, raw)


# ---------------------------------------------------------------------------------------------
# Injector


def test_off_by_default_with_gauges_at_zero() -> None:
    faults, registry = injector()
    assert faults.state == FaultState()
    assert gauge(registry, "latency") == 0
    assert gauge(registry, "error") == 0
    assert faults.decide(CREATE) is None


def test_gauges_follow_the_state() -> None:
    faults, registry = injector()
    faults.set(FaultState(latency=LatencyFault(100, 200)))
    assert (gauge(registry, "latency"), gauge(registry, "error")) == (1, 0)
    faults.set(FaultState(error=ErrorFault(0.5, grpc.StatusCode.INTERNAL)))
    assert (gauge(registry, "latency"), gauge(registry, "error")) == (0, 1)
    # A zero rate or a zero latency is configured but injects nothing: not active.
    faults.set(FaultState(latency=LatencyFault(0, 0), error=ErrorFault(0, grpc.StatusCode.INTERNAL)))
    assert (gauge(registry, "latency"), gauge(registry, "error")) == (0, 0)
    assert faults.decide(CREATE) is None
    faults.set(FaultState(latency=LatencyFault(1, 2), error=ErrorFault(1, grpc.StatusCode.INTERNAL)))
    faults.clear()
    assert (gauge(registry, "latency"), gauge(registry, "error")) == (0, 0)


def test_gauge_name_carries_the_service() -> None:
    registry = CollectorRegistry()
    FaultInjector("userd", registry)
    assert registry.get_sample_value("userd_fault_injection_active", {"kind": "error"}) == 0
    with pytest.raises(ValueError, match="metric name"):
        FaultInjector("user-d", CollectorRegistry())


@pytest.mark.parametrize(
    ("names", "path", "expected"),
    [
        ((), CREATE, True),
        ((), HEALTH, False),
        ((), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", False),
        ((CREATE,), CREATE, True),
        ((CREATE,), GET, False),
        (("GetOrder",), GET, True),
        (("GetOrder",), CREATE, False),
        (("Check",), HEALTH, True),
        ((HEALTH,), HEALTH, True),
    ],
)
def test_method_filter(names: tuple[str, ...], path: str, expected: bool) -> None:
    assert MethodFilter(frozenset(names)).matches(path) is expected


def test_error_rate_is_statistically_right() -> None:
    faults, _ = injector(seed=42)
    faults.set(FaultState(error=ErrorFault(0.2, grpc.StatusCode.INTERNAL)))
    draws = 20_000
    errors = sum(decide(faults, CREATE).code is grpc.StatusCode.INTERNAL for _ in range(draws))
    # 4 standard deviations of a binomial(20000, 0.2) is 0.0113.
    assert abs(errors / draws - 0.2) < 0.0113


def test_error_rate_one_and_zero_are_exact() -> None:
    faults, _ = injector()
    faults.set(FaultState(error=ErrorFault(1.0, grpc.StatusCode.UNAVAILABLE)))
    assert all(decide(faults, CREATE).code is grpc.StatusCode.UNAVAILABLE for _ in range(1000))
    faults.set(FaultState(error=ErrorFault(0.0, grpc.StatusCode.UNAVAILABLE)))
    assert all(decide(faults, CREATE).code is None for _ in range(1000))


def test_latency_range_and_fixed_latency() -> None:
    faults, _ = injector()
    faults.set(FaultState(latency=LatencyFault(600, 900)))
    delays = [decide(faults, CREATE).delay_seconds for _ in range(2000)]
    assert min(delays) >= 0.6
    assert max(delays) <= 0.9
    # Spread over the range, not stuck at one end.
    assert min(delays) < 0.62
    assert max(delays) > 0.88
    faults.set(FaultState(latency=LatencyFault(250, 250)))
    assert {decide(faults, CREATE).delay_seconds for _ in range(10)} == {0.25}


def test_faults_apply_only_to_their_methods() -> None:
    faults, _ = injector()
    faults.set(
        FaultState(
            latency=LatencyFault(100, 100, MethodFilter(frozenset({"GetOrder"}))),
            error=ErrorFault(1.0, grpc.StatusCode.INTERNAL, MethodFilter(frozenset({CREATE}))),
        )
    )
    on_create = decide(faults, CREATE)
    on_get = decide(faults, GET)
    assert (on_create.delay_seconds, on_create.code) == (0, grpc.StatusCode.INTERNAL)
    assert (on_get.delay_seconds, on_get.code) == (0.1, None)
    assert faults.decide("/user.v1.UserService/Me") is None


# ---------------------------------------------------------------------------------------------
# JSON


def test_json_round_trip() -> None:
    data = {
        "latency": {"min_ms": 600, "max_ms": 900, "methods": [GET, "CreateOrder"]},
        "error": {"rate": 0.2, "code": "internal", "methods": []},
    }
    state = parse_state(data)
    assert state.latency == LatencyFault(600, 900, MethodFilter(frozenset({GET, "CreateOrder"})))
    assert state.error == ErrorFault(0.2, grpc.StatusCode.INTERNAL)
    assert parse_state(state.to_json()) == state
    assert state.to_json()["error"]["code"] == "INTERNAL"
    assert parse_state({"latency": {"min_ms": 5}}).latency == LatencyFault(5, 5)
    assert parse_state({}) == FaultState()
    assert parse_state({"latency": None, "error": None}) == FaultState()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"latncy": {"min_ms": 1}}, "unknown key"),
        ({"latency": {"min_ms": 1, "jitter": 2}}, "unknown key"),
        ({"error": {"rate": 0.1, "code": "INTERNAL", "extra": 1}}, "unknown key"),
        ({"latency": {}}, "missing key"),
        ({"error": {"rate": 0.1}}, "missing key"),
        ({"latency": {"min_ms": -1}}, "between 0 and 60000"),
        ({"latency": {"min_ms": 10, "max_ms": 5}}, "must not be below"),
        ({"latency": {"min_ms": 61_000}}, "between 0 and 60000"),
        ({"latency": {"min_ms": "600"}}, "must be a number"),
        ({"error": {"rate": 1.5, "code": "INTERNAL"}}, "between 0 and 1"),
        ({"error": {"rate": -0.1, "code": "INTERNAL"}}, "between 0 and 1"),
        ({"error": {"rate": True, "code": "INTERNAL"}}, "must be a number"),
        ({"error": {"rate": 0.1, "code": "OK"}}, "status code name other than OK"),
        ({"error": {"rate": 0.1, "code": "BROKEN"}}, "status code name"),
        ({"error": {"rate": 0.1, "code": 13}}, "status code name"),
        ({"error": {"rate": 0.1, "code": "INTERNAL", "methods": "GetOrder"}}, "list of method names"),
        ({"error": {"rate": 0.1, "code": "INTERNAL", "methods": ["Get Order"]}}, r"methods\[0\]"),
        ({"error": {"rate": 0.1, "code": "INTERNAL", "methods": ["/nope"]}}, r"methods\[0\]"),
        (
            {"error": {"rate": 0.1, "code": "INTERNAL", "methods": [f"M{n}" for n in range(33)]}},
            "more than 32",
        ),
    ],
)
def test_invalid_json_is_refused_with_a_message(data: object, message: str) -> None:
    with pytest.raises(InvalidFaultSpec, match=message):
        parse_state(data)


# ---------------------------------------------------------------------------------------------
# Admin handler


def test_disabled_admin_refuses_everything() -> None:
    faults, registry = injector()
    admin = FaultAdmin(faults, enabled=False)
    for method in ("GET", "PUT", "DELETE"):
        status, body = admin.handle(
            method, "/admin/faults", {}, b'{"error": {"rate": 1, "code": "INTERNAL"}}'
        )
        assert status == 403
        assert "FAULT_INJECTION_ENABLED=true" in body["error"]
    assert faults.state == FaultState()
    assert gauge(registry, "error") == 0


def test_enabled_admin_get_put_delete() -> None:
    faults, registry = injector()
    admin = FaultAdmin(faults, enabled=True)
    assert admin.handle("GET", "/admin/faults", {}, b"") == (200, {"latency": None, "error": None})
    status, body = put(admin, {"error": {"rate": 0.25, "code": "UNAVAILABLE", "methods": ["Me"]}})
    assert status == 200
    assert body == {"latency": None, "error": {"rate": 0.25, "code": "UNAVAILABLE", "methods": ["Me"]}}
    assert faults.state.error == ErrorFault(
        0.25, grpc.StatusCode.UNAVAILABLE, MethodFilter(frozenset({"Me"}))
    )
    assert gauge(registry, "error") == 1
    assert admin.handle("get", "/admin/faults/?verbose=1", {}, b"") == (200, body)
    # PUT replaces the whole state: the error fault is gone.
    status, body = put(admin, {"latency": {"min_ms": 10}})
    assert status == 200
    assert body["error"] is None
    assert (gauge(registry, "latency"), gauge(registry, "error")) == (1, 0)
    assert admin.handle("DELETE", "/admin/faults", {}, b"") == (200, {"latency": None, "error": None})
    assert faults.state == FaultState()
    assert gauge(registry, "latency") == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b'{"error": {"rate": NaN, "code": "INTERNAL"}}',
        b'{"latency": {"min_ms": Infinity}}',
        b'{"error": {"rate": 2, "code": "INTERNAL"}}',
        b'{"bogus": 1}',
        b"",
        # int() refuses more than 4300 digits with a ValueError that is no JSONDecodeError.
        b'{"latency": {"min_ms": ' + b"9" * 5000 + b"}}",
        # json recursion: RecursionError.
        b"[" * 16_000,
        b'{"latency": {"min_ms": 1, "' + b"k" * 500 + b'": 1}}',
    ],
)
def test_bad_put_bodies_are_400_and_change_nothing(body: bytes) -> None:
    faults, _ = injector()
    admin = FaultAdmin(faults, enabled=True)
    before = FaultState(latency=LatencyFault(5, 5))
    faults.set(before)
    status, answer = put(admin, body)
    assert status == 400
    assert answer["error"]
    assert faults.state == before


def test_oversized_body_wrong_method_and_path() -> None:
    admin = FaultAdmin(injector()[0], enabled=True)
    assert put(admin, b" " * 20_000)[0] == 413
    assert admin.handle("POST", "/admin/faults", {}, b"{}")[0] == 405
    assert admin.handle("GET", "/admin/other", {}, b"")[0] == 404
    assert not FaultAdmin.handles("/metrics")
    assert FaultAdmin.handles("/admin/faults?x=1")


def test_token_is_required_when_configured() -> None:
    faults, _ = injector()
    admin = FaultAdmin(faults, enabled=True, token=TOKEN)
    spec = {"error": {"rate": 1, "code": "INTERNAL"}}
    status, body = put(admin, spec)
    assert status == 401
    assert "Authorization" in body["error"]
    assert put(admin, spec, {"Authorization": "Bearer wrong"})[0] == 403
    assert put(admin, spec, {"Authorization": f"Basic {TOKEN}"})[0] == 403
    assert admin.handle("GET", "/admin/faults", {"Authorization": "Bearer nope"}, b"")[0] == 403
    assert faults.state == FaultState()
    # Header names are case-insensitive in HTTP.
    assert put(admin, spec, {"authorization": f"Bearer {TOKEN}"})[0] == 200
    assert faults.state.error is not None
