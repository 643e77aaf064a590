"""Process entry shared by the services: run until SIGTERM/SIGINT, then shut down gracefully and
exit 0; a configuration error is one clear line on stderr and exit code 2."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.config import ConfigError

log = logging.getLogger(__name__)


class Service(Protocol):
    async def stop(self) -> None: ...


def run(start: Callable[[], Awaitable[Service]]) -> int:
    try:
        return asyncio.run(_serve(start))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2


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
