"""Delays between retries: doubling from a first delay up to a ceiling, optionally with jitter.

One object per thing being retried (a driver, a port, a modem, an uplink): `next()` after each failure,
`reset()` after a success. The caller sleeps, so tests can hand in an instant sleep or read the delays."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]
"""An async sleep, `asyncio.sleep` in the field; a recording one in tests."""


class Backoff:
    """`first`, `first*factor`, ... capped at `most`; with `jitter`, each delay is drawn from [d/2, d].

    "Equal jitter" keeps at least half the delay (a server just back is not hit at once) and spreads the
    retries of many boxes that lost the same uplink at the same moment."""

    def __init__(self, first: float, most: float, factor: float = 2.0, *, jitter: bool = False,
                 rng: random.Random | None = None) -> None:
        self.first, self.most, self.factor, self.jitter = first, most, factor, jitter
        self._rng = rng or random.Random()
        self._upcoming = first

    @property
    def upcoming(self) -> float:
        """The delay (before jitter) that `next()` will give, for a log line written before the wait."""
        return self._upcoming

    def next(self) -> float:
        """The delay to wait now; the one after it grows by `factor`, up to `most`."""
        delay = self._upcoming
        self._upcoming = min(delay * self.factor, self.most)
        return delay * (0.5 + 0.5 * self._rng.random()) if self.jitter else delay

    def reset(self) -> None:
        """After a success (or a long good run): the next failure waits `first` again."""
        self._upcoming = self.first

    def nth(self, attempt: int) -> float:
        """The delay after failed attempt `attempt` (1, 2, ...), without jitter or state: for retries whose
        count is stored (the SMS outbox) rather than held in memory."""
        return min(self.first * self.factor ** max(0, attempt - 1), self.most)
