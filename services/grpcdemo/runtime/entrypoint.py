"""Process entry shared by the services: `<svc>` serves until SIGTERM/SIGINT, then shuts down
gracefully and exits 0; `<svc> migrate` applies database migrations and exits; a configuration
error is one clear line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Protocol, TypeVar

from grpcdemo.runtime.config import CommonConfig, ConfigError
from grpcdemo.runtime.logs import configure_logging

log = logging.getLogger(__name__)


class Service(Protocol):
    async def stop(self) -> None: ...


class ServiceConfig(Protocol):
    @property
    def common(self) -> CommonConfig: ...


C = TypeVar("C", bound=ServiceConfig)


def service_main(
    name: str,
    description: str,
    load: Callable[[], C],
    migrate: Callable[[C], Coroutine[object, object, None]],
    create: Callable[[C], Awaitable[Service]],
    argv: Sequence[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=name, description=description)
    parser.add_argument("command", nargs="?", choices=["serve", "migrate"], default="serve")
    args = parser.parse_args(argv)
    try:
        config = load()
    except ConfigError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(name, config.common.log_level, config.common.log_format)
    if args.command == "migrate":
        asyncio.run(migrate(config))
        return 0
    return asyncio.run(_serve(lambda: create(config)))


async def _serve(start: Callable[[], Awaitable[Service]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await start()
    await stop.wait()
    log.info("shutting down")
    await service.stop()
    log.info("stopped")
    return 0
