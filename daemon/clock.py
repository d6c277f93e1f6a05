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
    """A clock that moves only when a test says so.

    `sleep()` waits until `advance()` has moved the clock past the wake-up time, so many
    sleepers (drivers, the no-data ticker) see one consistent time. With
    `auto_advance=True` a sleep moves the clock itself: handy for one lone sleeper.
    """

    def __init__(self, start: float = 1_700_000_000.0, auto_advance: bool = False) -> None:
        super().__init__()
        self._t = start
        self.auto_advance = auto_advance

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds

    async def sleep(self, seconds: float) -> None:
        if self.auto_advance:
            self._t += max(0.0, seconds)
            await asyncio.sleep(0)
            return
        wake = self._t + max(0.0, seconds)
        while self._t < wake:
            await asyncio.sleep(0.005)
