"""Log records over OTLP/HTTP (Loki 3 takes them at /otlp/v1/logs), beside the lines on stderr.

On only when OTEL_EXPORTER_OTLP_LOGS_ENDPOINT names the full URL (compose sets it; natively logs
stay in their files). Each record keeps the trace and span ids of the request that wrote it (Loki
stores them as structured metadata, so Grafana links a trace to its lines), the service name as a
resource attribute (Loki's one index label here, with the level detected from the severity), and
the same redaction as the stderr lines: no password, token or secret in an attribute.

Nothing on this path may block a request, so records go into a bounded queue that a background
thread exports in batches, each export bounded by a timeout. A full queue drops the record, an
export that fails drops its batch, and both are counted in `log_records_dropped_total{reason}`;
`log_records_exported_total` counts what arrived. A Loki that is down or slow costs memory up to the
queue's size and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Final

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from prometheus_client import CollectorRegistry, Counter

from grpcdemo.observability.tracing import service_name_from

ENDPOINT_VARIABLE: Final = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
# Extra fields that may carry a credential: shipped as "[redacted]", as on stderr.
SECRET_KEYS: Final = frozenset({"password", "token", "access_token", "authorization", "jwt_secret", "secret"})
REDACTED: Final = "[redacted]"


class LogExportMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dropped = Counter(
            "log_records_dropped_total",
            "Log records not shipped over OTLP: the queue was full, or the export failed.",
            ["reason"],
            registry=registry,
        )
        self.exported = Counter(
            "log_records_exported_total", "Log records the OTLP log endpoint accepted.", registry=registry
        )
        for reason in ("queue_full", "export_failed"):
            self.dropped.labels(reason)


class BoundedExportProcessor(LogRecordProcessor):
    """Queues up to `max_queue` records and exports them from its own thread, `max_batch` at a time,
    every `interval` seconds or as soon as a batch is full."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        metrics: LogExportMetrics,
        *,
        max_queue: int = 2048,
        max_batch: int = 512,
        interval: float = 1.0,
    ) -> None:
        self._exporter = exporter
        self._metrics = metrics
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._interval = interval
        self._queue: deque[ReadWriteLogRecord] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="otlp-log-export", daemon=True)
        self._thread.start()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        with self._lock:
            if self._stopping or len(self._queue) >= self._max_queue:
                self._metrics.dropped.labels("queue_full").inc()
                return
            self._queue.append(log_record)
            self._idle.clear()
            full = len(self._queue) >= self._max_batch
        if full:
            self._wake.set()

    def _take(self) -> list[ReadWriteLogRecord]:
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            if not batch:
                self._idle.set()
            return batch

    def _export(self, batch: Sequence[ReadWriteLogRecord]) -> None:
        try:
            result = self._exporter.export(batch)  # type: ignore[arg-type]
        except Exception:  # an exporter must not take the thread down
            result = LogRecordExportResult.FAILURE
        if result == LogRecordExportResult.SUCCESS:
            self._metrics.exported.inc(len(batch))
        else:
            self._metrics.dropped.labels("export_failed").inc(len(batch))

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            while batch := self._take():
                self._export(batch)
            if self._stopping:
                return

    def force_flush(self, timeout_millis: int = 5000) -> bool:
        self._wake.set()
        return self._idle.wait(timeout_millis / 1000)

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join(timeout=5)
        self._exporter.shutdown()  # type: ignore[no-untyped-call]


# The export path's own loggers: a failing export logs, and shipping that line would feed the loop.
_NOT_SHIPPED: Final = ("opentelemetry", "urllib3", "requests", __name__)


class ShippingFilter(logging.Filter):
    """Redacts, and keeps the export path's own records home. The stderr formatters redact
    secret-bearing extra fields when they format; the OTLP handler turns extra fields into
    attributes, so they are redacted on the record first."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_NOT_SHIPPED):
            return False
        for key in list(vars(record)):
            if key.lower() in SECRET_KEYS:
                setattr(record, key, REDACTED)
        return True


class LogExport:
    """The OTLP log path of one process: a handler on the root logger while it is open."""

    def __init__(
        self,
        service_name: str,
        exporter: LogRecordExporter,
        registry: CollectorRegistry,
        *,
        max_queue: int = 2048,
        resource_attributes: Mapping[str, str] | None = None,
    ) -> None:
        attributes = {**(resource_attributes or {}), SERVICE_NAME: service_name}
        self.metrics = LogExportMetrics(registry)
        self.processor = BoundedExportProcessor(exporter, self.metrics, max_queue=max_queue)
        # A plain Resource, not Resource.create: that adds a random service.instance.id per process
        # start, which Loki would index as a label (a new stream at every restart).
        self.provider = LoggerProvider(resource=Resource(attributes))
        self.provider.add_log_record_processor(self.processor)
        self.handler = LoggingHandler(logger_provider=self.provider)
        self.handler.addFilter(ShippingFilter())
        logging.getLogger().addHandler(self.handler)

    @classmethod
    def from_environ(
        cls, service_name: str, environ: Mapping[str, str], registry: CollectorRegistry
    ) -> LogExport | None:
        endpoint = environ.get(ENDPOINT_VARIABLE, "").strip()
        if not endpoint:
            return None
        # Imported only when used: it brings requests along.
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter(endpoint=endpoint, timeout=2)
        export = cls(service_name_from(service_name, environ), exporter, registry)
        logging.getLogger(__name__).info("shipping log records over OTLP", extra={"otlp_endpoint": endpoint})
        return export

    def close(self) -> None:
        """Ships what is queued (bounded by the export timeout) and detaches the handler."""
        logging.getLogger().removeHandler(self.handler)
        self.processor.force_flush(3000)
        self.provider.shutdown()
