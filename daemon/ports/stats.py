"""Counters of what the daemon did, for /healthz, /metrics and the logs."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("coldchain")

ONCE_MAX = 4096
"""Keys a 'log once' set keeps. Its keys name sensors, topics and reasons, which a long run with bad
input can make without end; the oldest are forgotten (logged again once, if they recur)."""


class OnceSet:
    """'Seen before?' for log-once keys, holding at most `cap` (oldest dropped first): memory stays flat."""

    def __init__(self, cap: int = ONCE_MAX) -> None:
        self.cap = cap
        self._keys: dict[tuple[str, ...], None] = {}

    def first(self, key: tuple[str, ...]) -> bool:
        """True the first time `key` is seen (or the first time since it was dropped)."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self.cap:
            del self._keys[next(iter(self._keys))]
        return True

    def keep(self, pred: Callable[[tuple[str, ...]], bool]) -> None:
        """Forget the keys `pred` rejects."""
        self._keys = {k: None for k in self._keys if pred(k)}

    def __len__(self) -> int:
        return len(self._keys)


class Stats:
    """Thread-safe counters, plus 'log the first time only' for repeated bad input."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self._seen = OnceSet()

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)

    def once(self, key: tuple[str, ...]) -> bool:
        """True the first time `key` is seen: log a repeated problem once, count it always."""
        with self._lock:
            return self._seen.first(key)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)
