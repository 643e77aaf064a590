"""The service runtime: what every service process is besides its domain and servicer.

config (environment parsed once, typed), logs (JSON/console lines with trace ids), grpc_server
(server assembly through the handler wrapper, health, reflection), status_mapping (the error hook:
domain errors to status codes), auth_metadata, result_counter (business counters), proto_time,
host (`ServiceHost`: metrics port, faults, server, ordered shutdown), entrypoint (`<svc> [serve|migrate]`)
and healthcheck (the `grpc-healthcheck` CLI).

Imports: grpcdemo.observability, grpcdemo.faults, grpcdemo.persistence, grpcdemo.errors; never the
services.
"""
