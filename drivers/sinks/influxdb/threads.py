"""The threads an InfluxDB sink makes its blocking HTTP calls in, apart from the loop's default pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class SinkThreads:
    """One small pool per sink: a slow server holds these for up to `timeout`, never the default pool's
    threads, in which the pipeline commits readings (`asyncio.to_thread`)."""

    def __init__(self, name: str, workers: int) -> None:
        self.name, self.workers = name, workers
        self._pool: ThreadPoolExecutor | None = None

    async def call(self, fn: Callable[[], T]) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def close(self) -> None:
        """Let calls on the wire finish in the background (each ends at the sink's timeout)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
