"""The services as real processes: clear start-up errors, graceful SIGTERM with in-flight calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from tests.support.observability_echo import Scrape, http_get
from tests.support.processes import ROOT, free_port, service_process, wait_serving
from tests.support.services import TEST_JWT_SECRET


def test_missing_jwt_secret_is_a_clear_startup_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/u.db"
    result = subprocess.run(
        [sys.executable, "-m", "userd"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "JWT_SECRET is required" in result.stderr
    assert "Traceback" not in result.stderr


def in_flight_registrations(metrics_port: int) -> float:
    _, _, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    return Scrape(body.decode()).value(
        "grpc_server_in_flight_requests", grpc_service="user.v1.UserService", grpc_method="Register"
    )


def test_sigterm_finishes_in_flight_calls_then_exits_zero(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "GRPC_ADDR": f"127.0.0.1:{port}",
        "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
        # Slow hashing keeps the registrations in flight when SIGTERM arrives.
        "BCRYPT_ROUNDS": "13",
        "LOG_FORMAT": "json",
    }
    log_path = tmp_path / "userd.log"
    with service_process("userd", env, log_path) as proc:
        wait_serving(port)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)

            def register(n: int) -> str:
                request = user_pb2.RegisterRequest(
                    email=f"u{n}@example.com", password="secret-pass-1", name="U"
                )
                return str(stub.Register(request, timeout=30).user.id)

            with ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(register, n) for n in range(4)]
                deadline = time.monotonic() + 10
                while in_flight_registrations(metrics_port) < 1:
                    assert time.monotonic() < deadline, "no registration in flight"
                    time.sleep(0.02)
                proc.send_signal(signal.SIGTERM)
                ids = [f.result(timeout=30) for f in futures]
        assert len(set(ids)) == 4
        assert proc.wait(timeout=20) == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    assert "shutting down" in messages and messages[-1] == "stopped"
    assert "secret-pass-1" not in log_path.read_text()
    assert TEST_JWT_SECRET not in log_path.read_text()


def test_steady_calls_through_sigterm_fail_none_that_started_before_the_stop(tmp_path: Path) -> None:
    """SIGTERM: health goes NOT_SERVING first, the server keeps answering for SHUTDOWN_DRAIN_SECONDS
    (so balancers stop sending), then refuses new calls; every call started before the stop ends
    OK, in-flight ones included (Me is made 300 ms slow, so a few are always in flight)."""
    port, metrics_port = free_port(), free_port()
    token = "drain-test-fault-token-0123456789"
    env = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "GRPC_ADDR": f"127.0.0.1:{port}",
        "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
        "BCRYPT_ROUNDS": "4",
        "SHUTDOWN_DRAIN_SECONDS": "2",
        "FAULT_INJECTION_ENABLED": "true",
        "FAULT_INJECTION_TOKEN": token,
    }
    with service_process("userd", env, tmp_path / "userd.log") as proc:
        wait_serving(port)
        request = urllib.request.Request(
            f"http://127.0.0.1:{metrics_port}/admin/faults",
            data=json.dumps({"latency": {"min_ms": 300, "methods": ["Me"]}}).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {token}"},
        )
        urllib.request.urlopen(request, timeout=5).close()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            users = user_pb2_grpc.UserServiceStub(channel)
            users.Register(
                user_pb2.RegisterRequest(email="d@example.com", password="correct horse", name="D")
            )
            access = users.Login(
                user_pb2.LoginRequest(email="d@example.com", password="correct horse")
            ).access_token
            metadata = (("authorization", f"Bearer {access}"),)
            results: list[tuple[float, grpc.StatusCode]] = []
            lock = threading.Lock()

            def one_call() -> None:
                started = time.monotonic()
                try:
                    users.Me(user_pb2.MeRequest(), metadata=metadata, timeout=10)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                with lock:
                    results.append((started, code))

            health_seen: list[tuple[float, int]] = []
            with ThreadPoolExecutor(32) as pool, grpc.insecure_channel(f"127.0.0.1:{port}") as probe:
                health = health_pb2_grpc.HealthStub(probe)
                # 25 calls a second for ~1 s before the stop and 4 s after it.
                stop_at = time.monotonic() + 1.0
                stopped_at = None
                for n in range(125):
                    due = stop_at - 1.0 + n * 0.04
                    while time.monotonic() < due:
                        time.sleep(0.005)
                    if stopped_at is None and time.monotonic() >= stop_at:
                        proc.send_signal(signal.SIGTERM)
                        stopped_at = time.monotonic()
                    pool.submit(one_call)
                    if stopped_at is not None and n % 5 == 0:
                        try:
                            status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                        except grpc.RpcError:
                            status = -1
                        health_seen.append((time.monotonic() - stopped_at, status))
        assert proc.wait(timeout=30) == 0
    assert stopped_at is not None
    before = [code for started, code in results if started < stopped_at]
    during_drain = [code for started, code in results if stopped_at + 0.2 <= started < stopped_at + 1.8]
    print(
        f"\ndrain: {len(before)} calls started before SIGTERM, "
        f"{sum(c == grpc.StatusCode.OK for c in before)} OK; "
        f"{len(during_drain)} during the drain, {sum(c == grpc.StatusCode.OK for c in during_drain)} OK"
    )
    assert len(before) >= 20
    assert set(before) == {grpc.StatusCode.OK}
    # Still served while draining, and health said NOT_SERVING meanwhile.
    assert during_drain and set(during_drain) == {grpc.StatusCode.OK}
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert any(status == not_serving for seconds, status in health_seen if seconds < 1.8)
    assert all(
        status != health_pb2.HealthCheckResponse.SERVING for seconds, status in health_seen if seconds > 0.2
    )
