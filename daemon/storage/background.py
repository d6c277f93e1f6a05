"""Storage upkeep beside ingest (rollups, retention): a blocking job in a worker thread, every interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from daemon.ports.stats import Stats


async def every(interval: float, job: Callable[[], object], *, stats: Stats, errors: str, what: str,
                log: logging.Logger) -> None:
    """Run `job` in a thread every `interval` seconds of real time, for good: a failure is counted under
    `errors` and logged, and the next run comes as usual (a full disk or a locked file passes)."""
    while True:
        try:
            await asyncio.to_thread(job)
        except Exception:
            stats.inc(errors)
            log.exception("%s failed; next try in %.0f s", what, interval)
        await asyncio.sleep(interval)
