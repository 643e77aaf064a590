"""`userd` serves; `userd migrate` applies database migrations and exits."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.config import ConfigError
from shared.log import configure_logging

from userd import app, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="userd", description="User accounts gRPC service")
    parser.add_argument("command", nargs="?", choices=["serve", "migrate"], default="serve")
    args = parser.parse_args(argv)
    try:
        cfg = config.load()
    except ConfigError as error:
        print(f"userd: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging("userd", cfg.common.log_level, cfg.common.log_format)
    if args.command == "migrate":
        asyncio.run(app.migrate(cfg))
        return 0
    from shared.runner import run

    return run(lambda: app.create_server(cfg))


if __name__ == "__main__":
    sys.exit(main())
