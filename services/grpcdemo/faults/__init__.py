"""Fault injection for chaos drills: added latency and error answers on chosen gRPC methods.

Off by default and in memory only, so a restart always clears it. `FaultInjector.decide` is the
before-call hook of the handler wrapper (grpcdemo.observability.server), which runs it INSIDE the
metrics and the span: an injected fault is recorded exactly like a real one, which is what makes the
drills exercise the alert rules. `FaultAdmin` serves /admin/faults on the metrics port.

Modules: model (the state), parsing (JSON body -> state), injector (state, gauge, per-call
decision), admin (the HTTP handler). Imports: prometheus_client and grpc only; nothing else of
grpcdemo, so the package can be lifted on its own.
"""

from grpcdemo.faults.admin import ADMIN_PATH, FaultAdmin
from grpcdemo.faults.injector import FaultInjector
from grpcdemo.faults.model import Decision, ErrorFault, FaultState, LatencyFault, MethodFilter
from grpcdemo.faults.parsing import InvalidFaultSpec, parse_body, parse_state

__all__ = [
    "ADMIN_PATH",
    "Decision",
    "ErrorFault",
    "FaultAdmin",
    "FaultInjector",
    "FaultState",
    "InvalidFaultSpec",
    "LatencyFault",
    "MethodFilter",
    "parse_body",
    "parse_state",
]
