"""`ServiceObservability`: everything a service process needs for metrics and traces, in one object.

Typical use in a service:
- `obs = ServiceObservability("userd", version=__version__)`
- `server = obs.instrument(grpc.aio.server())`, then register on `server` as usual (generated
  `add_*Servicer_to_server`, health, reflection): every method gets the one handler wrapper
  (`server.HandlerWrapper`), its series exist from start-up, and its calls are traced and measured;
- `grpc.aio.insecure_channel(addr, interceptors=obs.client_interceptors())`;
- `obs.start_exposition("127.0.0.1:9091", ready=lambda: state.ready)`, and `obs.close()` at shutdown.
Log records also go over OTLP when OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is set (log_export.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics

from grpcdemo.observability.client import client_interceptors
from grpcdemo.observability.exposition import ExpositionServer, ReadinessCheck, RouteHandler, start_exposition
from grpcdemo.observability.grpc_metrics import GrpcClientMetrics, GrpcServerMetrics
from grpcdemo.observability.log_export import LogExport
from grpcdemo.observability.process import register_build_info, register_runtime_collectors
from grpcdemo.observability.server import BeforeCall, ErrorMapper, HandlerWrapper, InstrumentedServer
from grpcdemo.observability.tracing import (
    ClientSpans,
    ServerSpans,
    create_tracer_provider,
    exports_spans,
    install_global_tracer_provider,
)


class ServiceObservability:
    """One per service process. Tests pass their own `registry` (and usually `span_processors` with
    an in-memory exporter, `environ={}` and `install_global_tracer=False`)."""

    def __init__(
        self,
        service_name: str,
        *,
        version: str,
        registry: CollectorRegistry = REGISTRY,
        environ: Mapping[str, str] | None = None,
        span_processors: Iterable[SpanProcessor] = (),
        tracer_provider: TracerProvider | None = None,
        install_global_tracer: bool = True,
        created_series: bool = False,
    ) -> None:
        if not created_series:
            # prometheus_client adds a `<name>_created` series per Counter and Histogram child (the
            # gRPC families here have none; the services' own metrics would); Go clients do not,
            # Prometheus 2.42 stores them as extra series, and nothing queries them. Process-wide.
            disable_created_metrics()  # type: ignore[no-untyped-call]
        self.service_name = service_name
        self.registry = registry
        register_runtime_collectors(registry)
        self.build_info = register_build_info(service_name, version, registry)
        self.server_metrics = GrpcServerMetrics(registry)
        self.client_metrics = GrpcClientMetrics(registry)
        processors = list(span_processors)
        self._owns_tracer_provider = tracer_provider is None
        self.tracer_provider = tracer_provider or create_tracer_provider(
            service_name, environ=environ, span_processors=processors, registry=registry
        )
        # Spans that no exporter or processor receives are made as contexts only (ids for the trace,
        # exemplars and logs); a provider from the caller may have processors we cannot see.
        self.spans_exported = tracer_provider is not None or exports_spans(environ, processors)
        if install_global_tracer:
            install_global_tracer_provider(self.tracer_provider)
        self._client_interceptors = client_interceptors(
            self.client_metrics, ClientSpans(self.tracer_provider, exported=self.spans_exported)
        )
        self._exposition: ExpositionServer | None = None
        # Log records over OTLP when OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is set (log_export.py).
        self.log_export = LogExport.from_environ(
            service_name, os.environ if environ is None else environ, registry
        )

    def handler_wrapper(
        self,
        *,
        before_call: BeforeCall | None = None,
        map_error: ErrorMapper | None = None,
        max_concurrent: int | None = None,
    ) -> HandlerWrapper:
        """The one wrapper for this process's handlers: span, metrics, then the given hooks (see
        grpcdemo.observability.server for the order)."""
        return HandlerWrapper(
            self.server_metrics,
            ServerSpans(self.tracer_provider, exported=self.spans_exported),
            before_call=before_call,
            map_error=map_error,
            max_concurrent=max_concurrent,
        )

    def instrument(self, server: Any, wrapper: HandlerWrapper | None = None) -> InstrumentedServer:
        """`server` (a grpc.aio.Server) with every registration made through the returned object
        wrapped by `wrapper` (default: `handler_wrapper()` without hooks)."""
        return InstrumentedServer(server, wrapper or self.handler_wrapper())

    def client_interceptors(self) -> list[Any]:
        """Client span and metrics, one interceptor per call kind; pass to `grpc.aio.insecure_channel`."""
        return list(self._client_interceptors)

    def preinitialize_server(self, *services: ServiceDescriptor) -> None:
        for service in services:
            self.server_metrics.preinitialize(service)

    def preinitialize_client(self, *services: ServiceDescriptor) -> None:
        for service in services:
            self.client_metrics.preinitialize(service)

    def start_exposition(
        self,
        addr: str | tuple[str, int],
        *,
        ready: ReadinessCheck = lambda: True,
        routes: Mapping[str, RouteHandler] | None = None,
    ) -> ExpositionServer:
        """Serves /metrics and /healthz (and `routes`) on `addr`; port 0 picks one (see `.port`)."""
        if self._exposition is not None:
            raise RuntimeError("exposition already started")
        self._exposition = start_exposition(addr, registry=self.registry, ready=ready, routes=routes)
        return self._exposition

    def close(self) -> None:
        """Stops the metrics port and flushes pending spans (of a provider it created) and log
        records; idempotent."""
        if self.log_export is not None:
            self.log_export.close()
            self.log_export = None
        if self._exposition is not None:
            self._exposition.close()
            self._exposition = None
        if self._owns_tracer_provider:
            self._owns_tracer_provider = False
            self.tracer_provider.shutdown()
