"""The native stack (`make up` without Docker), one job per module:

- components: the one description of the stack (commands, environment, ports, health checks,
  start order), read by `make up`, the benchmarks and the end-to-end test fixtures;
- prerequisites: finding or installing Prometheus and Alertmanager, ports that are taken;
- dotenv: the git-ignored `.env` with generated secrets;
- supervisor: starting in order, restarting what exits, holding a component down on purpose,
  stopping everything, and pid files that are checked before they are signalled.

`tools/up.py` is the command line on top. Standard library only (and grpc for one health probe),
so `make env` works before the virtualenv exists.
"""
