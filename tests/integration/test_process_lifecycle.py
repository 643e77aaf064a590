"""The services as real processes: clear start-up errors, graceful SIGTERM with in-flight calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
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
