"""HTTP routes: POST /hooks/<anything> (Slack incoming-webhook compatible), GET / (HTML),
GET /api/messages (JSON, newest first), GET /runbook (docs/runbook.md as HTML: the alerts' runbook
links point here), GET /healthz."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from slacksink.page import render_page
from slacksink.runbook import render_runbook
from slacksink.store import MessageStore

log = logging.getLogger("slacksink")

HOOK_PREFIX = "/hooks/"
# Alertmanager's largest Slack payloads are a few KiB; anything near this is not a notification.
MAX_BODY_BYTES = 1 << 20


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: MessageStore, runbook: Path | None = None) -> None:
        super().__init__(address, SinkHandler)
        self.store = store
        self.runbook = runbook

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class SinkHandler(BaseHTTPRequestHandler):
    server: SinkServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            page = render_page(self.server.store.newest_first())
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif path == "/api/messages":
            messages = [message.to_json() for message in self.server.store.newest_first()]
            self._send_json(HTTPStatus.OK, {"count": len(messages), "messages": messages})
        elif path == "/runbook" and self.server.runbook is not None:
            # Read per request: an edited runbook shows without a restart.
            page = render_runbook(self.server.runbook.read_text(encoding="utf-8"))
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:
        hook = self.path.split("?", 1)[0]
        if not hook.startswith(HOOK_PREFIX) or hook == HOOK_PREFIX:
            self._discard_body()
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            return
        payload, error = self._read_json_object()
        if payload is None:
            self._send(HTTPStatus.BAD_REQUEST, f"{error}\n".encode(), "text/plain; charset=utf-8")
            return
        message = self.server.store.add(hook, payload)
        log.info("received %s message on %s", message.status, hook)
        # What Slack answers, so clients written against Slack accept it.
        self._send(HTTPStatus.OK, b"ok", "text/plain; charset=utf-8")

    def _read_json_object(self) -> tuple[dict[str, Any] | None, str]:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return None, "Content-Length required"
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            return None, "body too large"
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None, "body is not JSON"
        if not isinstance(payload, dict):
            return None, "body is not a JSON object"
        return payload, ""

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if 0 <= length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _send_json(self, status: HTTPStatus, document: object) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Route http.server's access log through logging, at debug: one line per request is noise.
        log.debug("%s %s", self.address_string(), format % args)
