"""Metrics, traces and the metrics port for grpc.aio services.

Services use `ServiceObservability`; the pieces it bundles are exported for reuse and tests.
"""

from shared.observability.exposition import ExpositionServer, HttpRequest, HttpResponse, start_exposition
from shared.observability.grpc_client_interceptor import client_metrics_interceptors
from shared.observability.grpc_metrics import (
    GRPC_LATENCY_BUCKETS,
    GrpcClientMetrics,
    GrpcServerMetrics,
    MethodSpec,
    methods_of,
)
from shared.observability.grpc_server_interceptor import ServerMetricsInterceptor
from shared.observability.service import ServiceObservability
from shared.observability.trace_context import current_trace_ids

__all__ = [
    "GRPC_LATENCY_BUCKETS",
    "ExpositionServer",
    "GrpcClientMetrics",
    "GrpcServerMetrics",
    "HttpRequest",
    "HttpResponse",
    "MethodSpec",
    "ServerMetricsInterceptor",
    "ServiceObservability",
    "client_metrics_interceptors",
    "current_trace_ids",
    "methods_of",
    "start_exposition",
]
