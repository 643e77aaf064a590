"""Metrics, traces and the metrics port for grpc.aio services: the liftable library.

What it gives a grpc.aio service:
- `grpc_server_*` / `grpc_client_*` metrics with go-grpc-middleware's names, types and label values
  (grpc_metrics, grpc_names), recorded with the code the peer really received (server_status);
- server and client spans with W3C propagation (tracing), and trace-id exemplars on the latency
  histograms and error counts (trace_context);
- the one handler wrapper, built per method at registration (server: `HandlerWrapper`,
  `InstrumentedServer`), with hooks for behaviour that must run inside the metrics (fault
  injection, error mapping); the client interceptors (client);
- `/metrics` and `/healthz` served from threads (exposition), build info and runtime collectors
  (process), and `ServiceObservability` bundling all of it (service).

Imports: grpc, protobuf, prometheus_client and the OpenTelemetry API/SDK only; nothing else of
grpcdemo, nothing of the services. To lift it, copy this folder and rename the package.
"""

from grpcdemo.observability.client import client_interceptors
from grpcdemo.observability.exposition import ExpositionServer, HttpRequest, HttpResponse, start_exposition
from grpcdemo.observability.grpc_metrics import (
    GRPC_LATENCY_BUCKETS,
    GrpcClientMetrics,
    GrpcServerMetrics,
    MethodSpec,
    methods_of,
)
from grpcdemo.observability.server import HandlerWrapper, InstrumentedServer
from grpcdemo.observability.service import ServiceObservability
from grpcdemo.observability.trace_context import current_trace_ids

__all__ = [
    "GRPC_LATENCY_BUCKETS",
    "ExpositionServer",
    "GrpcClientMetrics",
    "GrpcServerMetrics",
    "HandlerWrapper",
    "HttpRequest",
    "HttpResponse",
    "InstrumentedServer",
    "MethodSpec",
    "ServiceObservability",
    "client_interceptors",
    "current_trace_ids",
    "methods_of",
    "start_exposition",
]
