"""The metrics port: `/metrics`, `/healthz` and optional extra routes, served by an event loop of its
own on one daemon thread.

Its own thread, not the service's loop: a slow scrape (or a slow scraper) must never delay RPCs, and
the registry is read under its own locks anyway. An event loop rather than a thread per connection:
a client that opens connections and sends a byte now and then costs a coroutine, not a thread, so
400 such clients leave the process at its usual thread count and a scrape still answers at once.
Each request must arrive whole within REQUEST_TIMEOUT_SECONDS; at most MAX_CONNECTIONS are open, and
when a new one comes past that the longest-waiting unfinished one is dropped.

`/metrics` picks OpenMetrics when the Accept header asks for it (Prometheus does; exemplars exist
only there), the classic text format otherwise, and gzips when allowed. Extra routes (e.g. an admin
endpoint) are called on this thread: a handler that touches the service's asyncio state must hand
over with `loop.call_soon_threadsafe`. Responses close the connection (`Connection: close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Final
from urllib.parse import parse_qs

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

METRICS_PATH: Final = "/metrics"
HEALTH_PATH: Final = "/healthz"

# Admin payloads are a few hundred bytes; anything bigger is refused before it is read.
MAX_BODY_BYTES: Final = 64 * 1024
MAX_HEAD_BYTES: Final = 16 * 1024
# The whole request (line, headers, body) must arrive within this, however it trickles in.
REQUEST_TIMEOUT_SECONDS: Final = 5.0
MAX_CONNECTIONS: Final = 512


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
    headers: Mapping[str, str] = field(default_factory=dict)


RouteHandler = Callable[[HttpRequest], HttpResponse]
ReadinessCheck = Callable[[], bool]


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


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


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Status"


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest(505, "HTTP/1.x only")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400, "malformed header")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest(411, "send Content-Length, not chunked")
    try:
        length = int(headers.get("content-length", "0") or 0)
    except ValueError:
        raise _BadRequest(400, "bad Content-Length") from None
    if length < 0:
        raise _BadRequest(400, "bad Content-Length")
    if length > MAX_BODY_BYTES:
        raise _BadRequest(413, "body too large")
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return HttpRequest(method.upper(), path or "/", parse_qs(query), body, headers)


class _App:
    def __init__(
        self, registry: CollectorRegistry, ready: ReadinessCheck, routes: Mapping[str, RouteHandler]
    ) -> None:
        self._registry = registry
        self._ready = ready
        self._routes = dict(routes)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == METRICS_PATH:
            return self._metrics(request)
        if request.path == HEALTH_PATH:
            return self._health()
        handler = self._routes.get(request.path)
        if handler is None:
            return HttpResponse(404, b"not found\n")
        try:
            return handler(request)
        except Exception:
            log.exception("metrics port route failed", extra={"path": request.path})
            return HttpResponse(500, b"internal error\n")

    def _metrics(self, request: HttpRequest) -> HttpResponse:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = encoder(self._registry)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return HttpResponse(200, gzip.compress(body), content_type, {"Content-Encoding": "gzip"})
        return HttpResponse(200, body, content_type)

    def _health(self) -> HttpResponse:
        try:
            ready = self._ready()
        except Exception:
            log.exception("readiness check failed")
            ready = False
        return HttpResponse(200, b"ok\n") if ready else HttpResponse(503, b"not ready\n")


def _encode(response: HttpResponse) -> bytes:
    headers = {
        "Content-Type": response.content_type,
        "Content-Length": str(len(response.body)),
        "Connection": "close",
        **response.headers,
    }
    head = f"HTTP/1.1 {_status_line(response.status)}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    return head.encode("latin-1") + b"\r\n" + response.body


class ExpositionServer:
    """Bound on construction (so the port is known, also for port 0) and served by `start()`."""

    def __init__(
        self,
        addr: str | tuple[str, int],
        *,
        registry: CollectorRegistry = REGISTRY,
        ready: ReadinessCheck = lambda: True,
        routes: Mapping[str, RouteHandler] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        extra = dict(routes or {})
        reserved = {METRICS_PATH, HEALTH_PATH} & extra.keys()
        if reserved:
            raise ValueError(f"routes may not replace {sorted(reserved)}")
        host, port = parse_listen_address(addr)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=256)
        self._app = _App(registry, ready, extra)
        self._max_connections = max_connections
        self._request_timeout = request_timeout
        # Connections whose request has not arrived whole yet, oldest first.
        self._waiting: dict[asyncio.StreamWriter, None] = {}
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def host(self) -> str:
        return str(self._socket.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ExpositionServer:
        if self._thread is not None or self._closed:
            raise RuntimeError("exposition server already started or closed")
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name=f"metrics-http-{self.port}", daemon=True
        )
        self._thread.start()
        started.wait(timeout=10)
        log.info("metrics endpoint listening", extra={"url": self.url + METRICS_PATH})
        return self

    def _serve(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(
            asyncio.start_server(self._connection, sock=self._socket, limit=MAX_HEAD_BYTES)
        )
        started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._max_connections and self._waiting:
            oldest = next(iter(self._waiting))
            self._waiting.pop(oldest)
            oldest.transport.abort()
        self._open += 1
        self._waiting[writer] = None
        try:
            try:
                request = await asyncio.wait_for(_read_request(reader), self._request_timeout)
            except _BadRequest as error:
                response = HttpResponse(error.status, f"{error}\n".encode())
            else:
                self._waiting.pop(writer, None)
                response = self._app(request)
            writer.write(_encode(response))
            await asyncio.wait_for(writer.drain(), self._request_timeout)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the client was too slow, went away or sent half a request: nothing to answer
        finally:
            self._waiting.pop(writer, None)
            self._open -= 1
            writer.close()

    def close(self) -> None:
        """Stops accepting, closes the socket and waits for the serving thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._socket.close()

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
