"""Test-only runner: the daemon with an accelerated clock, which `coldchain run` does not expose.

    python -m tests.daemon.accelerated_daemon CONFIG SPEED

The clock starts after the newest journaled reading, so timestamps keep rising across the
restarts of a kill loop (a restarted fast clock would otherwise replay the same minutes).
Prints `ready` once every task runs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from daemon.app.plugins import load_config
from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.storage.journal import Journal


async def main(config: str, speed: float) -> None:
    cfg = load_config(config)
    journal = Journal(cfg.storage.journal)
    newest = max((r.ts for r in journal.readings.latest()), default=0.0)
    d = Daemon(cfg, clock=Clock(speed=speed, start=max(time.time(), newest + 1.0)), journal=journal)
    await d.start()
    print("ready", flush=True)
    await d.wait()
    await d.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
