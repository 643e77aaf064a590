"""`GET/PUT/DELETE /admin/faults`: reads, replaces and clears the fault state over HTTP.

Refused unless the service runs with FAULT_INJECTION_ENABLED=true, and then also wants
`Authorization: Bearer <FAULT_INJECTION_TOKEN>` when that variable is set; the metrics port it is
served on binds to 127.0.0.1 by default. `handle()` returns a status and a JSON-serialisable body
and never raises: every bad request is a 4xx with a reason."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any, Final

from grpcdemo.faults.injector import FaultInjector
from grpcdemo.faults.parsing import InvalidFaultSpec, parse_body

log = logging.getLogger(__name__)

ADMIN_PATH: Final = "/admin/faults"

AdminResponse = tuple[int, dict[str, Any]]


class FaultAdmin:
    def __init__(self, injector: FaultInjector, *, enabled: bool, token: str | None = None) -> None:
        self._injector = injector
        self.enabled = enabled
        self._token = token.encode() if token else None
        if enabled and self._token is None:
            log.warning(
                "fault injection admin is enabled without FAULT_INJECTION_TOKEN: anyone who can reach "
                "the metrics port can inject faults (it binds to 127.0.0.1 unless METRICS_ADDR says otherwise)"
            )

    @staticmethod
    def handles(path: str) -> bool:
        return path.partition("?")[0].rstrip("/") == ADMIN_PATH

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> AdminResponse:
        if not self.handles(path):
            return 404, {"error": f"not found; the fault injection admin endpoint is {ADMIN_PATH}"}
        if not self.enabled:
            return 403, {
                "error": "fault injection is disabled on this service; "
                "start it with FAULT_INJECTION_ENABLED=true to use it"
            }
        refused = self._check_token(headers)
        if refused is not None:
            return refused
        verb = method.upper()
        if verb == "GET":
            return 200, self._injector.state.to_json()
        if verb == "DELETE":
            self._injector.clear()
            return 200, self._injector.state.to_json()
        if verb == "PUT":
            try:
                state = parse_body(body)
            except InvalidFaultSpec as error:
                status = 413 if "larger than" in str(error) else 400
                return status, {"error": str(error)}
            self._injector.set(state)
            return 200, state.to_json()
        return 405, {"error": f"method {verb} not allowed; use GET, PUT or DELETE"}

    def _check_token(self, headers: Mapping[str, str]) -> AdminResponse | None:
        if self._token is None:
            return None
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if value is None:
            return 401, {"error": "missing `Authorization: Bearer <FAULT_INJECTION_TOKEN>` header"}
        scheme, _, presented = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self._token):
            return 403, {"error": "wrong fault injection token"}
        return None
