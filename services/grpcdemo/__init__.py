"""The project's own packages that both services use the same way, under one distinctive name so
that nothing collides with other top-level packages once the wheel is installed:

- `observability`: the liftable gRPC metrics + tracing library and the one handler wrapper;
- `faults`: fault injection for chaos drills (state, parsing, admin endpoint, per-call decision);
- `persistence`: database engines, repository operation timing and outage handling, migrations;
- `runtime`: the service process (config, logging, server assembly, error mapping, host, entry);
- `errors`: domain errors, free of gRPC, that domain code raises;
- `genproto`: stubs generated from protos/ (`make proto`).

Import direction (enforced by import-linter, `.importlinter`): runtime may use every other package
here; observability, faults, persistence and errors use none of the others (persistence may raise
`errors`); nothing here imports the services (userd, orderd), slacksink or loadgen.
"""
