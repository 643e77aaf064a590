"""The one place where a service's grpc.aio server is assembled: interceptors attached, health
checking and reflection registered, bound, started, and stopped gracefully."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared.config import HostPort

log = logging.getLogger(__name__)

Registrar = Callable[[grpc.aio.Server], None]


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def stop(self, grace_seconds: float) -> None:
        """Health goes NOT_SERVING first so balancers drain; in-flight calls then get up to
        `grace_seconds` to finish while new calls are refused."""
        await self.set_serving(False)
        await self.server.stop(grace_seconds)


async def start_grpc_server(
    addr: HostPort,
    register: Registrar,
    service_names: Sequence[str],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> RunningServer:
    server = grpc.aio.server(interceptors=list(interceptors))
    register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(str(addr))
    if port == 0:
        raise OSError(f"cannot bind gRPC address {addr}")
    await server.start()
    running = RunningServer(server, port, health_servicer, tuple(service_names))
    await running.set_serving(True)
    log.info("gRPC server listening", extra={"addr": f"{addr.host}:{port}"})
    return running
