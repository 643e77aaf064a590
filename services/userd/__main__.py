"""`userd` serves; `userd migrate` applies database migrations and exits."""

from __future__ import annotations

import sys

from grpcdemo.runtime.entrypoint import service_main

from userd import app, config


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "userd", "User accounts gRPC service", config.load, app.migrate, app.create_server, argv
    )


if __name__ == "__main__":
    sys.exit(main())
