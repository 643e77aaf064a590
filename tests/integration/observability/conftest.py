from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client import CollectorRegistry
from shared.observability.exposition import start_exposition
from shared.observability.grpc_client_interceptor import client_metrics_interceptors
from shared.observability.grpc_metrics import GrpcClientMetrics, GrpcServerMetrics, MethodSpec
from shared.observability.grpc_server_interceptor import ServerMetricsInterceptor

from tests.support.observability_echo import (
    SYNC_SERVICE,
    Scrape,
    echo_channel,
    echo_server,
    echo_service_descriptor,
    scrape,
)


@dataclass
class EchoStack:
    """The echo service behind the metrics interceptors, a client channel with the client
    interceptors, and one registry served over HTTP."""

    registry: CollectorRegistry
    server_metrics: GrpcServerMetrics
    client_metrics: GrpcClientMetrics
    metrics_url: str
    target: str
    channel: grpc.aio.Channel

    async def scrape(self) -> Scrape:
        return await scrape(self.metrics_url)


@pytest.fixture
async def echo_stack() -> AsyncIterator[EchoStack]:
    registry = CollectorRegistry()
    server_metrics = GrpcServerMetrics(registry)
    client_metrics = GrpcClientMetrics(registry)
    for metrics in (server_metrics, client_metrics):
        metrics.preinitialize(echo_service_descriptor())
        metrics.preinitialize_methods(
            [MethodSpec(SYNC_SERVICE, "Echo", "unary"), MethodSpec(SYNC_SERVICE, "Expand", "server_stream")]
        )
    with start_exposition("127.0.0.1:0", registry=registry) as exposition:
        async with (
            echo_server([ServerMetricsInterceptor(server_metrics)]) as server,
            echo_channel(server.target, client_metrics_interceptors(client_metrics)) as channel,
        ):
            yield EchoStack(registry, server_metrics, client_metrics, exposition.url, server.target, channel)
