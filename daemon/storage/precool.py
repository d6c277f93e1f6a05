"""Precooling runs: the `precool_runs` table (one open run per room at most; a unique index guards it).

What a run means and how its figures are made: `daemon/lots/precool.py`, `daemon/reports/cooling.py`. Writes take
the caller's transaction, so a run that starts with a lot's check-in commits with it and with its audit entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daemon.storage.db import Database, Tx

_COLS = ("SELECT id, zone, lot, commodity, started, started_by, how, target_s, ended, ended_by, end_reason, figures "
         "FROM precool_runs")


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    zone: str
    lot: str | None
    commodity: str | None
    started: float
    started_by: str
    how: str  # manual (page or API) or check_in
    target_s: float | None
    ended: float | None
    ended_by: str | None
    end_reason: str | None  # seven_eighths, stopped, lot_left, split, merge
    figures: dict[str, Any] | None  # the figures at the end; None while open (computed on demand)


def _row(r: tuple[Any, ...]) -> RunRow:
    return RunRow(int(r[0]), r[1], r[2], r[3], float(r[4]), r[5], r[6], r[7], r[8], r[9], r[10],
                  json.loads(r[11]) if r[11] else None)


class PrecoolRuns:
    """The `precool_runs` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, run_id: int) -> RunRow | None:
        r = self._db.one(f"{_COLS} WHERE id = ?", (run_id,))
        return None if r is None else _row(r)

    def find(self, *, zone: str | None = None, lot: str | None = None, open_only: bool = False,
             limit: int = 200) -> list[RunRow]:
        """Newest first."""
        sql, args = f"{_COLS} WHERE 1=1", []
        if zone is not None:
            sql += " AND zone = ?"
            args.append(zone)
        if lot is not None:
            sql += " AND lot = ?"
            args.append(lot)
        if open_only:
            sql += " AND ended IS NULL"
        return [_row(r) for r in self._db.read(sql + " ORDER BY started DESC, id DESC LIMIT ?", [*args, limit])]

    # -- inside the caller's transaction

    @staticmethod
    def open_in(tx: Tx, zone: str) -> RunRow | None:
        r = tx.execute(f"{_COLS} WHERE zone = ? AND ended IS NULL", (zone,)).fetchone()
        return None if r is None else _row(r)

    @staticmethod
    def open_of_lot(tx: Tx, lot: str) -> RunRow | None:
        r = tx.execute(f"{_COLS} WHERE lot = ? AND ended IS NULL", (lot,)).fetchone()
        return None if r is None else _row(r)

    @staticmethod
    def insert(tx: Tx, zone: str, lot: str | None, commodity: str | None, started: float, who: str, how: str,
               target_s: float | None) -> int:
        cur = tx.execute("INSERT INTO precool_runs (zone, lot, commodity, started, started_by, how, target_s) "
                         "VALUES (?,?,?,?,?,?,?)", (zone, lot, commodity, started, who, how, target_s))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    @staticmethod
    def end(tx: Tx, run_id: int, ended: float, who: str, reason: str, figures: dict[str, Any]) -> None:
        tx.execute("UPDATE precool_runs SET ended = ?, ended_by = ?, end_reason = ?, figures = ? "
                   "WHERE id = ? AND ended IS NULL",
                   (ended, who, reason, json.dumps(figures, ensure_ascii=False, sort_keys=True), run_id))
