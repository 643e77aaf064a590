"""Client of a service's /admin/faults endpoint (stdlib urllib, run off the event loop)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ADMIN_PATH = "/admin/faults"


class FaultAdminError(RuntimeError):
    """The endpoint refused or could not be reached; the message includes the service's answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FaultAdminClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 5.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"admin URL {base_url!r} must look like http://127.0.0.1:9091")
        self.url = base_url.rstrip("/") + ADMIN_PATH
        self._token = token
        self._timeout = timeout

    async def get(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._request, "GET", None)

    async def put(self, spec: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._request, "PUT", spec)

    async def clear(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._request, "DELETE", None)

    def _request(self, method: str, body: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        # The scheme was checked to be http(s) in __init__: no file: or custom-scheme URLs get here.
        request = urllib.request.Request(self.url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as error:
            raise FaultAdminError(
                f"{method} {self.url}: HTTP {error.code}: {_error_text(error.read())}", error.code
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise FaultAdminError(f"{method} {self.url}: cannot connect ({reason})") from None
        except ValueError as error:
            raise FaultAdminError(f"{method} {self.url}: the answer is not JSON ({error})") from None


def _error_text(body: bytes) -> str:
    try:
        message = json.loads(body).get("error")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str):
        return message
    return body.decode("utf-8", "replace")[:200] or "(no body)"
