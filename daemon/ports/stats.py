"""Counters of what the daemon did, for /healthz, /metrics and the logs."""

from __future__ import annotations

import logging
import threading
from collections import Counter

log = logging.getLogger("coldchain")


class Stats:
    """Thread-safe counters, plus 'log the first time only' for repeated bad input."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self._seen: set[tuple[str, ...]] = set()

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)

    def once(self, key: tuple[str, ...]) -> bool:
        """True the first time `key` is seen: log a repeated problem once, count it always."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)
