"""What every service process runs besides its own servicer: the metrics port (from start-up), the
handler wrapper with fault injection and error mapping as its hooks, the gRPC server with health and
reflection, the database with its health, and an ordered, idempotent shutdown. userd and orderd use
it identically.

Health (gRPC `grpc.health.v1` and `/healthz`) is SERVING while the server runs, is not draining, and
its database answers; a lost database turns it NOT_SERVING within the probe interval and back by
itself once the database returns. Shutdown: health goes NOT_SERVING first, the server keeps answering
for SHUTDOWN_DRAIN_SECONDS (so balancers and readiness probes see it and stop sending), then refuses
new calls and gives in-flight ones SHUTDOWN_GRACE_SECONDS."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry

from grpcdemo.faults import ADMIN_PATH, FaultAdmin, FaultInjector
from grpcdemo.observability.exposition import ExpositionServer, HttpRequest, HttpResponse, RouteHandler
from grpcdemo.observability.process import distribution_version
from grpcdemo.observability.service import ServiceObservability
from grpcdemo.persistence.database import Database
from grpcdemo.runtime.config import CommonConfig
from grpcdemo.runtime.grpc_server import Registrar, RunningServer, server_options, start_grpc_server
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
    _dependencies_down: set[str] = field(default_factory=set)
    _draining: bool = False
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

    async def open_database(
        self,
        operations: Iterable[str],
        migrations: Path | None = None,
        version_table: str = "",
    ) -> Database:
        """The service's database (DATABASE_URL), migrated when `migrations` is given, its health
        feeding the server's."""
        db = Database(
            self.config.database_url,
            service=self.config.service_name,
            registry=self.registry,
            operations=operations,
            probe_interval=self.config.database_probe_seconds,
        )
        self.on_stop(db.close)
        if migrations is not None:
            await db.migrate(migrations, version_table)

        async def changed(up: bool) -> None:
            await self.dependency_changed("database", up)

        db.start_probing(changed)
        return db

    async def dependency_changed(self, name: str, up: bool) -> None:
        if up:
            self._dependencies_down.discard(name)
        else:
            self._dependencies_down.add(name)
        await self._update_health()

    async def _update_health(self) -> None:
        serving = self.grpc is not None and not self._draining and not self._dependencies_down
        if serving:
            self._ready.set()
        else:
            self._ready.clear()
        if self.grpc is not None:
            if serving != self.grpc.serving:
                log.warning(
                    "health %s",
                    "SERVING" if serving else "NOT_SERVING",
                    extra={"down": ",".join(sorted(self._dependencies_down)), "draining": self._draining},
                )
            await self.grpc.set_serving(serving)

    async def serve(self, register: Registrar, services: Sequence[ServiceDescriptor]) -> None:
        # Registered methods get their series when wrapped; this covers generic handlers too.
        self.observability.preinitialize_server(*services)
        # Span, metrics, admission, then injected faults, then error mapping around the handler: an
        # injected fault is measured exactly like a real one, inside a span
        # (grpcdemo.observability.server).
        wrapper = self.observability.handler_wrapper(
            before_call=self.faults.decide,
            map_error=map_error,
            max_concurrent=self.config.max_concurrent_rpcs,
        )
        self.grpc = await start_grpc_server(
            self.config.grpc_addr,
            register,
            [s.full_name for s in services],
            wrapper,
            options=server_options(self.config),
            # grpc's own limit refuses calls before any handler runs, unmeasured: it is only the
            # backstop behind the wrapper's counted one (health and reflection are exempt there).
            maximum_concurrent_rpcs=2 * self.config.max_concurrent_rpcs,
            serving=not self._dependencies_down,
        )
        await self._update_health()

    async def stop(self, grace_seconds: float | None = None, drain_seconds: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._draining = True
        await self._update_health()
        grace = self.config.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        drain = self.config.shutdown_drain_seconds if drain_seconds is None else drain_seconds
        try:
            if self.grpc is not None:
                await self.grpc.stop(grace, drain)
            for closer in reversed(self._closers):
                await closer()
        finally:
            self.observability.close()
