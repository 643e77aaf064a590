"""Log records over OTLP, as far as this machine allows without Loki: a real userd process ships its
records with the real OTLP/HTTP exporter to a receiver here that decodes the real protobuf.

- A record written inside a call carries that call's trace id (the server span continues the
  caller's trace), its resource holds the bounded set of attributes Loki indexes, and the password
  sent in the call appears nowhere in what was shipped.
- With the endpoint unreachable, calls see no error and the dropped records are counted.
- The queue is bounded: an exporter that hangs never blocks a log call, and the overflow is counted."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.observability.log_export import BoundedExportProcessor, LogExportMetrics
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from prometheus_client import CollectorRegistry

from tests.support.observability_echo import Scrape, http_get
from tests.support.processes import free_port, service_process, wait_serving
from tests.support.services import TEST_JWT_SECRET

# Loki 3 turns service.name into its `service_name` index label; nothing per user, order, request or
# process start (the SDK's default service.instance.id would be one).
BOUNDED_RESOURCE_KEYS = {"service.name"}


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                body = ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/logs"

    def requests(self) -> list[ExportLogsServiceRequest]:
        return [ExportLogsServiceRequest.FromString(body) for body in list(self.bodies)]


@contextmanager
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@contextmanager
def userd(tmp_path: Path, endpoint: str) -> Iterator[tuple[user_pb2_grpc.UserServiceStub, int]]:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "BCRYPT_ROUNDS": "4",
        "GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/u.db",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": endpoint,
    }
    with service_process("userd", env, tmp_path / "userd.log"):
        wait_serving(grpc_port)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            yield user_pb2_grpc.UserServiceStub(channel), metrics_port


def test_a_record_of_a_call_carries_its_trace_id_and_no_secret(tmp_path: Path) -> None:
    trace_id = secrets.token_hex(16)
    password = "pw-" + secrets.token_hex(12)
    with receiver() as found, userd(tmp_path, found.url) as (users, _):
        traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
        users.Register(
            user_pb2.RegisterRequest(email="logs@example.com", password=password, name="L"),
            metadata=(("traceparent", traceparent),),
            timeout=10,
        )

        def shipped() -> list[tuple[dict[str, str], str, str, str]]:
            records = []
            for request in found.requests():
                for resource_logs in request.resource_logs:
                    resource = {a.key: a.value.string_value for a in resource_logs.resource.attributes}
                    for scope_logs in resource_logs.scope_logs:
                        for record in scope_logs.log_records:
                            records.append(
                                (
                                    resource,
                                    record.trace_id.hex(),
                                    record.body.string_value,
                                    record.severity_text,
                                )
                            )
            return records

        deadline = time.monotonic() + 15
        while (
            not any(body == "user registered" for _, _, body, _ in shipped()) and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        registered = [r for r in shipped() if r[2] == "user registered"]
        assert registered, [r[2] for r in shipped()]
        resource, shipped_trace_id, _, severity = registered[0]
        assert shipped_trace_id == trace_id
        assert severity == "INFO"
        assert resource["service.name"] == "userd"
        assert set(resource) <= BOUNDED_RESOURCE_KEYS
        assert all(password.encode() not in body for body in found.bodies)


def test_an_unreachable_endpoint_adds_no_error_and_counts_what_it_drops(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1/logs"
    with userd(tmp_path, closed) as (users, metrics_port):
        started = time.monotonic()
        for n in range(30):
            users.Register(
                user_pb2.RegisterRequest(email=f"u{n}@example.com", password="correct horse", name="U"),
                timeout=5,
            )
        elapsed = time.monotonic() - started

        def dropped() -> float:
            _, _, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
            return Scrape(body.decode()).value("log_records_dropped_total", reason="export_failed")

        deadline = time.monotonic() + 15
        while dropped() < 30 and time.monotonic() < deadline:
            time.sleep(0.2)
        print(
            f"\n30 registrations in {elapsed:.2f}s with the log endpoint down; {dropped():.0f} records dropped"
        )
        assert dropped() >= 30


class HangingExporter(LogRecordExporter):
    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, batch: Sequence[object]) -> LogRecordExportResult:
        self.release.wait(10)
        return LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def test_a_hanging_exporter_never_blocks_a_log_call_and_the_overflow_is_counted() -> None:
    registry = CollectorRegistry()
    metrics = LogExportMetrics(registry)
    exporter = HangingExporter()
    processor = BoundedExportProcessor(exporter, metrics, max_queue=10, max_batch=5, interval=0.05)
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    logger = logging.getLogger("test.log_export.hanging")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    try:
        slowest = 0.0
        for n in range(200):
            started = time.perf_counter()
            logger.warning("record %d", n)
            slowest = max(slowest, time.perf_counter() - started)
        full = registry.get_sample_value("log_records_dropped_total", {"reason": "queue_full"})
        assert full is not None and full >= 200 - 10 - 5
        assert slowest < 0.05, f"a log call took {slowest * 1e3:.1f} ms"
    finally:
        logger.handlers.clear()
        exporter.release.set()
        provider.shutdown()


def test_secret_bearing_fields_are_redacted_and_the_export_path_is_not_shipped() -> None:
    from grpcdemo.observability.log_export import LogExport
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

    exporter = InMemoryLogRecordExporter()
    export = LogExport("userd", exporter, CollectorRegistry())
    try:
        logging.getLogger("userd.servicer").warning(
            "login refused", extra={"password": "hunter2", "Authorization": "Bearer abc", "user_id": "u-1"}
        )
        logging.getLogger("urllib3.connectionpool").warning("Retrying after connection refused")
        export.processor.force_flush(2000)
    finally:
        export.close()
    records = [item.log_record for item in exporter.get_finished_logs()]
    assert [r.body for r in records] == ["login refused"]
    attributes = dict(records[0].attributes or {})
    assert attributes["password"] == "[redacted]"
    assert attributes["Authorization"] == "[redacted]"
    assert attributes["user_id"] == "u-1"
