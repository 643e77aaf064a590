"""What every service process runs besides its own servicer: the metrics port (from start-up,
ready once gRPC serves), the handler wrapper with fault injection and error mapping as its hooks,
the gRPC server with health and reflection, and an ordered, idempotent shutdown. userd and orderd
use it identically."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry

from grpcdemo.faults import ADMIN_PATH, FaultAdmin, FaultInjector
from grpcdemo.observability.exposition import ExpositionServer, HttpRequest, HttpResponse, RouteHandler
from grpcdemo.observability.process import distribution_version
from grpcdemo.observability.service import ServiceObservability
from grpcdemo.runtime.config import CommonConfig
from grpcdemo.runtime.grpc_server import Registrar, RunningServer, start_grpc_server
from grpcdemo.runtime.status_mapping import map_error

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]


DISTRIBUTION = "grpc-observability-demo"


def package_version() -> str:
    return distribution_version(DISTRIBUTION)


def default_observability(service_name: str) -> ServiceObservability:
    # A registry per service object, not the process-global one: tests run both services in one
    # process, and each must expose only its own series.
    return ServiceObservability(service_name, version=package_version(), registry=CollectorRegistry())


def admin_route(admin: FaultAdmin) -> RouteHandler:
    def route(request: HttpRequest) -> HttpResponse:
        status, body = admin.handle(request.method, request.path, request.headers, request.body)
        return HttpResponse(status, json.dumps(body).encode(), "application/json")

    return route


@dataclass
class ServiceHost:
    config: CommonConfig
    observability: ServiceObservability
    faults: FaultInjector
    exposition: ExpositionServer
    grpc: RunningServer | None = None
    _closers: list[Closer] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stopped: bool = False

    @classmethod
    def open(cls, config: CommonConfig, observability: ServiceObservability | None = None) -> ServiceHost:
        """Starts the metrics port at once (not ready yet), before migrations and connections."""
        obs = observability or default_observability(config.service_name)
        faults = FaultInjector(config.service_name, obs.registry)
        admin = FaultAdmin(faults, enabled=config.fault_injection_enabled, token=config.fault_injection_token)
        ready = threading.Event()
        exposition = obs.start_exposition(
            str(config.metrics_addr), ready=ready.is_set, routes={ADMIN_PATH: admin_route(admin)}
        )
        return cls(config, obs, faults, exposition, _ready=ready)

    @property
    def registry(self) -> CollectorRegistry:
        return self.observability.registry

    @property
    def port(self) -> int:
        if self.grpc is None:
            raise RuntimeError("gRPC server not started")
        return self.grpc.port

    @property
    def metrics_port(self) -> int:
        return self.exposition.port

    def on_stop(self, closer: Closer) -> None:
        """Run `closer` at shutdown, after the gRPC server has drained (last registered, first run)."""
        self._closers.append(closer)

    async def serve(self, register: Registrar, services: Sequence[ServiceDescriptor]) -> None:
        # Registered methods get their series when wrapped; this covers generic handlers too.
        self.observability.preinitialize_server(*services)
        # Span, metrics, then injected faults, then error mapping around the handler: an injected
        # fault is measured exactly like a real one, inside a span (grpcdemo.observability.server).
        wrapper = self.observability.handler_wrapper(before_call=self.faults.decide, map_error=map_error)
        self.grpc = await start_grpc_server(
            self.config.grpc_addr, register, [s.full_name for s in services], wrapper
        )
        self._ready.set()

    async def stop(self, grace_seconds: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._ready.clear()
        grace = self.config.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        try:
            if self.grpc is not None:
                await self.grpc.stop(grace)
            for closer in reversed(self._closers):
                await closer()
        finally:
            self.observability.close()
