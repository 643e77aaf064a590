from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpcdemo.observability.client import client_interceptors
from grpcdemo.observability.exposition import start_exposition
from grpcdemo.observability.grpc_metrics import GrpcClientMetrics, GrpcServerMetrics
from grpcdemo.observability.server import HandlerWrapper
from prometheus_client import CollectorRegistry

from tests.support.observability_echo import (
    Scrape,
    echo_channel,
    echo_server,
    echo_service_descriptor,
    scrape,
)


@dataclass
class EchoStack:
    """The echo service behind the handler wrapper (metrics only, no span, no hooks), a client
    channel with the client interceptors (metrics only), and one registry served over HTTP."""

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
    with start_exposition("127.0.0.1:0", registry=registry) as exposition:
        async with (
            echo_server(HandlerWrapper(server_metrics)) as server,
            echo_channel(server.target, client_interceptors(client_metrics)) as channel,
        ):
            yield EchoStack(registry, server_metrics, client_metrics, exposition.url, server.target, channel)
