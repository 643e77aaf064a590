"""`slacksink [--addr HOST:PORT] [--jsonl PATH] [--max-messages N] [--runbook PATH]`: run the Slack
sink until SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from slacksink.server import SinkServer
from slacksink.store import MessageStore

DEFAULT_ADDR = "127.0.0.1:9095"
# In a source checkout (native `make up`); compose mounts the file and passes --runbook.
DEFAULT_RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"

log = logging.getLogger("slacksink")


def parse_addr(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _stop(signum: int, frame: FrameType | None) -> None:
    # Unwinds serve_forever() in the main thread, so the finally blocks close the socket and the file.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slacksink", description=__doc__)
    parser.add_argument(
        "--addr",
        type=parse_addr,
        default=parse_addr(os.environ.get("SLACKSINK_ADDR", DEFAULT_ADDR)),
        help=f"listen address (env SLACKSINK_ADDR, default {DEFAULT_ADDR})",
    )
    parser.add_argument("--jsonl", type=Path, help="also append every message to this JSONL file")
    parser.add_argument("--max-messages", type=int, default=500, help="messages kept in memory")
    parser.add_argument(
        "--runbook", type=Path, default=DEFAULT_RUNBOOK if DEFAULT_RUNBOOK.is_file() else None,
        help="Markdown served at /runbook (default: docs/runbook.md of a source checkout)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "info").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s slacksink: %(message)s",
    )
    signal.signal(signal.SIGTERM, _stop)
    with (
        MessageStore(args.max_messages, args.jsonl) as store,
        SinkServer(args.addr, store, args.runbook) as server,
    ):
        # Tests and scripts that pass port 0 read the real port from this line.
        log.info("listening on %s", server.url)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
