"""Wall time for the whole daemon, optionally accelerated for demos and tests."""

from __future__ import annotations

import asyncio
import time


class Clock:
    """UTC epoch seconds. `speed` > 1 runs simulated time faster than real time.

    Every component (rules, drivers, stale checks) reads time and sleeps through one
    Clock, so a demo at speed 60 shows an hour of cold-room life in a minute.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real0 = time.monotonic()
        self._sim0 = time.time() if start is None else start

    def now(self) -> float:
        return self._sim0 + (time.monotonic() - self._real0) * self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of clock time."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock(Clock):
    """A clock that moves only when told; for tests of delays and timers."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__()
        self._t = start

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds

    async def sleep(self, seconds: float) -> None:
        self._t += max(0.0, seconds)
        await asyncio.sleep(0)
