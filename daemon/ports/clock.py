"""Wall time for the whole daemon, optionally accelerated for demos and tests."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections.abc import Callable

SYNC_RECHECK = 30.0  # seconds between two questions to the kernel about its NTP state
JUMP = 60.0
"""A wall-clock step larger than this (seconds) between two checks is a jump, not drift or slewing."""

TIME_ERROR = 5  # adjtimex(2): "clock not synchronized"


def clock_synchronised() -> bool | None:
    """True/False from the kernel's NTP state (chrony, ntpd and timesyncd all set it); None if unknown."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != TIME_ERROR)


class Clock:
    """UTC epoch seconds. `speed` > 1 runs simulated time faster than real time.

    Every component (rules, drivers, stale checks) reads time and sleeps through one
    Clock, so a demo at speed 60 shows an hour of cold-room life in a minute.

    At speed 1 the clock is the system's wall clock, so an NTP correction after a boot
    without RTC reaches every new timestamp; `jumped()` reports such a step so that
    timers counted in wall time (alarm delays, no-data, escalation) can be moved with it.
    Sleeps are monotonic and never stretched or cut short by a jump.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall = wall if speed == 1.0 and start is None else None
        self._real0 = time.monotonic()
        self._sim0 = wall() if start is None else start
        self._seen = (self._real0, self._sim0)
        self._synced: tuple[float, bool | None] = (float("-inf"), None)  # (monotonic when asked, answer)
        self.kernel_synchronised: Callable[[], bool | None] | None = None
        """Where the NTP state comes from (`clock_synchronised` by default); asked only for the real wall clock."""

    def synchronised(self) -> bool | None:
        """Is the wall clock NTP-synchronised? None for a simulated clock or when the kernel does not say.

        Asked for every batch of readings, answered from a 30 s cache (one adjtimex call)."""
        if self._wall is None:
            return None
        mono = time.monotonic()
        if mono - self._synced[0] > SYNC_RECHECK:
            ask = self.kernel_synchronised
            if ask is None:
                ask = clock_synchronised
            self._synced = (mono, ask())
        return self._synced[1]

    def now(self) -> float:
        if self._wall is not None:
            return self._wall()
        return self._sim0 + (time.monotonic() - self._real0) * self.speed

    def jumped(self) -> float:
        """Seconds the wall clock stepped since the last call (0.0 below `JUMP`, or for a simulated clock)."""
        if self._wall is None:
            return 0.0
        mono, wall = time.monotonic(), self._wall()
        step = wall - (self._seen[1] + (mono - self._seen[0]))
        self._seen = (mono, wall)
        if abs(step) <= JUMP:
            return 0.0
        self._synced = (float("-inf"), None)  # a step is NTP at work: ask the kernel again at once
        return step

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
        self._wall = None  # time moves only by advance(); it never jumps by itself
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
