"""The one place where a service's grpc.aio server is assembled: every registration (the service's
own, health checking, reflection) made through the handler wrapper, bound, started, its health
kept, and stopped in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from grpcdemo.observability.server import HandlerWrapper, InstrumentedServer
from grpcdemo.runtime.config import CommonConfig, HostPort

log = logging.getLogger(__name__)

Registrar = Callable[[grpc.aio.Server], None]

# A health service name that answers SERVING as long as the process runs, for liveness probes: the
# whole server ("") and the API services go NOT_SERVING while a dependency is down or the server
# drains, which must take it out of rotation (readiness), not get it restarted (liveness).
LIVENESS_SERVICE = "liveness"

MAX_METADATA_BYTES = 64 * 1024


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    _serving: bool | None = field(default=None, init=False)

    async def set_serving(self, serving: bool) -> None:
        if serving == self._serving:
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    @property
    def serving(self) -> bool:
        return bool(self._serving)

    async def stop(self, grace_seconds: float, drain_seconds: float = 0.0) -> None:
        """Health goes NOT_SERVING first; the server keeps answering for `drain_seconds`, so that
        balancers and readiness probes see it and send no new calls; then new calls are refused and
        in-flight calls get up to `grace_seconds` to finish."""
        await self.set_serving(False)
        if drain_seconds > 0:
            log.info("draining before stop", extra={"drain_seconds": drain_seconds})
            await asyncio.sleep(drain_seconds)
        await self.server.stop(grace_seconds)


def server_options(config: CommonConfig) -> list[tuple[str, int]]:
    """Connections are recycled after GRPC_MAX_CONNECTION_AGE_SECONDS (GOAWAY, then in-flight calls
    get the grace period): clients re-resolve their target, so replicas added later receive calls
    too. A client sees no failed call, since grpc retries a call refused by a GOAWAY transparently."""
    return [
        ("grpc.max_connection_age_ms", int(config.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(config.max_connection_age_grace_seconds * 1000)),
        # gRPC's default soft limit on a request's metadata (8 KiB) refuses larger headers at random
        # before any handler runs: RESOURCE_EXHAUSTED, uncounted, whatever the cause. Up to the hard
        # limit the handler sees the call and names the cause (an oversized token is UNAUTHENTICATED).
        ("grpc.max_metadata_size", MAX_METADATA_BYTES),
        ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
    ]


async def start_grpc_server(
    addr: HostPort,
    register: Registrar,
    service_names: Sequence[str],
    wrapper: HandlerWrapper,
    *,
    options: Sequence[tuple[str, Any]] = (),
    maximum_concurrent_rpcs: int | None = None,
    serving: bool = True,
) -> RunningServer:
    server = grpc.aio.server(options=list(options), maximum_concurrent_rpcs=maximum_concurrent_rpcs)
    instrumented = InstrumentedServer(server, wrapper)
    register(instrumented)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, instrumented)
    reflection.enable_server_reflection(
        (*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        instrumented,
    )
    port = server.add_insecure_port(str(addr))
    if port == 0:
        raise OSError(f"cannot bind gRPC address {addr}")
    await server.start()
    running = RunningServer(server, port, health_servicer, tuple(service_names))
    await health_servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    await running.set_serving(serving)
    log.info("gRPC server listening", extra={"addr": f"{addr.host}:{port}"})
    return running
