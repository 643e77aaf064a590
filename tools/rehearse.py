"""`make rehearse`: docker-compose.yml run without Docker (tools/rehearsal), until Ctrl-C.

Reads docker-compose.yml and .env as `docker compose up` would (after `make env`), writes what
`make up` writes for compose, then starts every service it can run here, each replica on its own
loopback address, names resolved by dnsmasq as by Docker's DNS. Root is needed (mount namespaces,
port 53). What differs from Docker: docs/compose-rehearsal.md."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rehearsal.composefile import ComposeError, compose_environment, load
from rehearsal.stack import Rehearsal, RehearsalError
from stackconfig import prepare_compose

ROOT = Path(__file__).resolve().parents[1]


def scale_arg(text: str) -> tuple[str, int]:
    name, sep, count = text.partition("=")
    if not sep or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected SERVICE=N, got {text!r}")
    return name, int(count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--project", type=Path, default=ROOT, help="folder of docker-compose.yml")
    parser.add_argument("--env-file", type=Path, default=None, help="default: the project's .env")
    parser.add_argument("--scale", type=scale_arg, action="append", default=[], help="SERVICE=N, as compose")
    parser.add_argument("--network", type=int, default=77, help="second octet of the addresses (127.N.x.y)")
    args = parser.parse_args(argv)
    env = compose_environment(args.env_file or args.project / ".env", os.environ)
    try:
        project = load(args.project / "docker-compose.yml", env)
        prepare_compose(args.project, env)
        rehearsal = Rehearsal(project, args.project / ".run" / "rehearsal", dict(args.scale), args.network)
    except (ComposeError, ValueError) as error:
        print(f"rehearse: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        rehearsal.up()
        print("\ncompose rehearsal is up (Ctrl-C stops it):")
        for name, replicas in rehearsal.replicas.items():
            print(f"  {name:<16} {', '.join(r.address for r in replicas)}")
        print(
            f"  {'DNS':<16} {rehearsal.dns_address} (resolv.conf for your own commands: {rehearsal.work}/resolv.conf)"
        )
        for note in rehearsal.notes:
            print(f"  note: {note}")
        stop.wait()
        return 0
    except RehearsalError as error:
        print(f"rehearse: {error}", file=sys.stderr)
        return 1
    finally:
        rehearsal.down()


if __name__ == "__main__":
    sys.exit(main())
