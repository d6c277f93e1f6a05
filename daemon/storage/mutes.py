"""Mutes: a zone's alarms silenced for a planned time (defrost, cleaning, a delivery), with who and why."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from daemon.storage.db import Database, Tx

MuteRow = tuple[int, str, float, float, str, str]  # (id, zone, start, end, reason, who)


class Mutes:
    """The `mutes` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.now: Callable[[], float] = time.time  # the daemon's Clock once `Journal.use_clock` is called

    def add(self, zone: str, start: float, end: float, reason: str, who: str) -> int:
        with self._db.transaction() as tx:
            cur = tx.execute("INSERT INTO mutes (zone, start, end, reason, who, created) VALUES (?,?,?,?,?,?)",
                             (zone, start, end, reason, who, self.now()))
            return int(cur.lastrowid or 0)

    def end(self, mute_id: int, at: float) -> bool:
        """End a mute still in force at `at`; False if there was none."""
        with self._db.transaction() as tx:
            return tx.execute("UPDATE mutes SET end=? WHERE id=? AND end>?", (at, mute_id, at)).rowcount == 1

    def find(self, *, active_at: float | None = None) -> list[MuteRow]:
        """(id, zone, start, end, reason, who), all or those still in force at `active_at`."""
        sql = "SELECT id, zone, start, end, reason, who FROM mutes"
        args: tuple[Any, ...] = ()
        if active_at is not None:
            sql += " WHERE end > ?"
            args = (active_at,)
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in self._db.read(sql + " ORDER BY id", args)]

    @staticmethod
    def shift_timers(tx: Tx, step: float, now: float) -> None:
        """Mutes still in force at `now` (the old clock's time) move with a wall-clock step."""
        tx.execute("UPDATE mutes SET start = start + ?, end = end + ? WHERE end > ?", (step, step, now))
