"""Forward cursors: per consumer (a sink's readings, its alarm events), the last journal id it confirmed.

A cursor is written only after its consumer confirmed delivery, so a restart resumes where the
uplink stopped and at worst sends a batch twice, never skips one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from daemon.storage.db import Database


class Cursors:
    """The `cursors` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.now: Callable[[], float] = time.time  # the daemon's Clock once `Journal.use_clock` is called

    def get(self, name: str) -> int:
        """The last id confirmed under `name`; 0 for a cursor never set."""
        row = self._db.one("SELECT last_id FROM cursors WHERE name = ?", (name,))
        return int(row[0]) if row else 0

    def set(self, name: str, last_id: int) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO cursors (name, last_id, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET last_id = excluded.last_id, updated = excluded.updated",
                (name, last_id, self.now()),
            )

    def all(self) -> dict[str, int]:
        """Every cursor by name (for metrics)."""
        return {str(name): int(last) for name, last in self._db.read("SELECT name, last_id FROM cursors")}
