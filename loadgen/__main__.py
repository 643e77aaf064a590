"""`loadgen` / `python -m loadgen`: run a scenario until --duration or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from loadgen.config import LoadgenConfig, parse
from loadgen.explain import explain
from loadgen.pool import SetupError
from loadgen.run import run

EXIT_SETUP_FAILED = 1
EXIT_INTERRUPTED = 130


async def _run_until_signalled(config: LoadgenConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main_task = asyncio.current_task()

    def on_signal() -> None:
        # First signal: stop scheduling and finish cleanly (summary, faults off). Second: give up.
        if stop.is_set() and main_task is not None:
            main_task.cancel()
            return
        stop.set()
        sys.stderr.write("\nloadgen: stopping (signal again to abort)\n")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await run(config, stop=stop)
    except SetupError as error:
        sys.stderr.write(f"loadgen: {error}\n")
        return EXIT_SETUP_FAILED
    except asyncio.CancelledError:
        sys.stderr.write("loadgen: aborted\n")
        return EXIT_INTERRUPTED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if config.explain:
        print(explain(config))
        return 0
    return asyncio.run(_run_until_signalled(config))


if __name__ == "__main__":
    sys.exit(main())
