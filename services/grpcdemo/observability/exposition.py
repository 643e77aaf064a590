"""The metrics port: `/metrics`, `/healthz` and optional extra routes, served from daemon threads.

Threads rather than the event loop: a slow scrape (or a slow scraper) must never delay RPCs, and the
registry is read under its own locks anyway. `/metrics` is prometheus_client's WSGI app, which picks
OpenMetrics when the Accept header asks for it (Prometheus does; exemplars exist only there), the
classic text format otherwise, and gzips when allowed.

Extra routes (e.g. an admin endpoint) are called on the HTTP thread: a handler that touches asyncio
state must hand over with `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Final
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

log = logging.getLogger(__name__)

METRICS_PATH: Final = "/metrics"
HEALTH_PATH: Final = "/healthz"

# Admin payloads are a few hundred bytes; anything bigger is refused before it is read.
MAX_BODY_BYTES: Final = 64 * 1024

# How often the serving thread checks for shutdown; bounds how long close() waits.
_POLL_INTERVAL_SECONDS: Final = 0.05

# A client that opens a connection and sends nothing must not hold a thread forever.
_CONNECTION_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


RouteHandler = Callable[[HttpRequest], HttpResponse]
ReadinessCheck = Callable[[], bool]


def parse_listen_address(addr: str | tuple[str, int]) -> tuple[str, int]:
    """`127.0.0.1:9091`, `[::1]:9091`, `:9091` (all interfaces) or a (host, port) pair."""
    if isinstance(addr, tuple):
        return addr
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"listen address {addr!r}: expected HOST:PORT")
    host = host.removeprefix("[").removesuffix("]")
    try:
        return host, int(port)
    except ValueError:
        raise ValueError(f"listen address {addr!r}: port {port!r} is not a number") from None


class _QuietHandler(WSGIRequestHandler):
    timeout = _CONNECTION_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: object) -> None:
        # One line per scrape on stderr would drown the service's own logs.
        log.debug("metrics http: " + format, *args)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host with getfqdn(), a reverse DNS lookup that can
        # stall start-up for seconds; the name is only used to fill SERVER_NAME.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


class _ThreadingWSGIServerV6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Status"


class _App:
    def __init__(
        self, registry: CollectorRegistry, ready: ReadinessCheck, routes: Mapping[str, RouteHandler]
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._ready = ready
        self._routes = dict(routes)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == METRICS_PATH:
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        if path == HEALTH_PATH:
            return self._respond(start_response, self._health())
        handler = self._routes.get(path)
        if handler is None:
            return self._respond(start_response, HttpResponse(404, b"not found\n"))
        return self._respond(start_response, self._call_route(handler, environ, path))

    def _health(self) -> HttpResponse:
        try:
            ready = self._ready()
        except Exception:
            log.exception("readiness check failed")
            ready = False
        return HttpResponse(200, b"ok\n") if ready else HttpResponse(503, b"not ready\n")

    def _call_route(self, handler: RouteHandler, environ: WSGIEnvironment, path: str) -> HttpResponse:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse(400, b"bad Content-Length\n")
        if length > MAX_BODY_BYTES:
            return HttpResponse(413, b"body too large\n")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        request = HttpRequest(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            path=path,
            query=parse_qs(str(environ.get("QUERY_STRING", ""))),
            body=body,
            headers=headers,
        )
        try:
            return handler(request)
        except Exception:
            log.exception("metrics port route failed", extra={"path": path})
            return HttpResponse(500, b"internal error\n")

    @staticmethod
    def _respond(start_response: StartResponse, response: HttpResponse) -> list[bytes]:
        start_response(
            _status_line(response.status),
            [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))],
        )
        return [response.body]


class ExpositionServer:
    """Bound on construction (so the port is known, also for port 0) and served by `start()`."""

    def __init__(
        self,
        addr: str | tuple[str, int],
        *,
        registry: CollectorRegistry = REGISTRY,
        ready: ReadinessCheck = lambda: True,
        routes: Mapping[str, RouteHandler] | None = None,
    ) -> None:
        extra = dict(routes or {})
        reserved = {METRICS_PATH, HEALTH_PATH} & extra.keys()
        if reserved:
            raise ValueError(f"routes may not replace {sorted(reserved)}")
        host, port = parse_listen_address(addr)
        server_class = _ThreadingWSGIServerV6 if ":" in host else _ThreadingWSGIServer
        self._server = server_class((host, port), _QuietHandler)
        self._server.set_app(_App(registry, ready, extra))
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ExpositionServer:
        if self._thread is not None or self._closed:
            raise RuntimeError("exposition server already started or closed")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_SECONDS},
            name=f"metrics-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("metrics endpoint listening", extra={"url": self.url + METRICS_PATH})
        return self

    def close(self) -> None:
        """Stops accepting, closes the socket and waits for the serving thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ExpositionServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_exposition(
    addr: str | tuple[str, int],
    *,
    registry: CollectorRegistry = REGISTRY,
    ready: ReadinessCheck = lambda: True,
    routes: Mapping[str, RouteHandler] | None = None,
) -> ExpositionServer:
    """Binds `addr` (port 0 picks a free port, see `.port`) and serves it from a daemon thread."""
    return ExpositionServer(addr, registry=registry, ready=ready, routes=routes).start()
