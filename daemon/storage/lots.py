"""Lots (batches by traceability code) and their stays in zones: the `lots` and `lot_stays` tables.

A lot has at most one open stay (a unique index guards it). The rules of checking in, moving and
checking out live in `daemon/lots/store.py`; this holds their rows. Writes take the caller's
transaction, so a change and its audit entry (`audit.py`) commit together.
"""

from __future__ import annotations

import json
from typing import Any

from daemon.storage.db import Database, Tx

LotRow = tuple[str, str, float | None, str | None, str | None, float, str, float | None]
"""(code, commodity, quantity, unit, origin, created, created_by, checked_out)"""
StayRow = tuple[str, float, float | None, str, str | None]
"""(zone, start, end, who_in, who_out)"""
FoundRow = tuple[str, str, float | None, str | None, str | None, float, float | None, str | None]
"""(code, commodity, quantity, unit, origin, created, checked_out, zone it is in now)"""


class LotStays:
    """The `lots` and `lot_stays` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- reads

    def get(self, code: str) -> LotRow | None:
        row = self._db.one("SELECT code, commodity, quantity, unit, origin, created, created_by, checked_out "
                           "FROM lots WHERE code = ?", (code,))
        return None if row is None else (row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])

    def stays(self, code: str) -> list[StayRow]:
        """The lot's stays, oldest first."""
        rows = self._db.read("SELECT zone, start, end, who_in, who_out FROM lot_stays WHERE lot = ? "
                             "ORDER BY start, id", (code,))
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def search(self, *, in_storage: bool | None = None, zone: str | None = None, limit: int = 500) -> list[FoundRow]:
        """Newest first; `in_storage` True: not checked out, False: checked out; `zone`: in that zone now."""
        sql = ("SELECT l.code, l.commodity, l.quantity, l.unit, l.origin, l.created, l.checked_out, s.zone "
               "FROM lots l LEFT JOIN lot_stays s ON s.lot = l.code AND s.end IS NULL WHERE 1=1")
        args: list[Any] = []
        if in_storage is not None:
            sql += " AND l.checked_out IS NULL" if in_storage else " AND l.checked_out IS NOT NULL"
        if zone is not None:
            sql += " AND s.zone = ?"
            args.append(zone)
        rows = self._db.read(sql + " ORDER BY l.created DESC LIMIT ?", [*args, limit])
        return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def in_storage(self) -> int:
        """How many lots are not checked out."""
        row = self._db.one("SELECT COUNT(*) FROM lots WHERE checked_out IS NULL")
        return int(row[0]) if row else 0

    # -- inside the caller's transaction

    @staticmethod
    def exists(tx: Tx, code: str) -> bool:
        return tx.execute("SELECT 1 FROM lots WHERE code = ?", (code,)).fetchone() is not None

    @staticmethod
    def commodity(tx: Tx, code: str) -> str | None:
        """The lot's commodity key, or None when there is no such lot."""
        row = tx.execute("SELECT commodity FROM lots WHERE code = ?", (code,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def open_stay(tx: Tx, code: str) -> tuple[int, str] | None:
        """(stay id, zone) of the lot's open stay, or None once checked out."""
        row = tx.execute("SELECT id, zone FROM lot_stays WHERE lot = ? AND end IS NULL", (code,)).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    @staticmethod
    def open_stay_start(tx: Tx, code: str) -> float | None:
        """When the lot's open stay began (its latest event), or None."""
        row = tx.execute("SELECT start FROM lot_stays WHERE lot = ? AND end IS NULL", (code,)).fetchone()
        return None if row is None else float(row[0])

    @staticmethod
    def insert(tx: Tx, code: str, commodity: str, quantity: float | None, unit: str | None, origin: str | None,
               created: float, created_by: str) -> None:
        tx.execute("INSERT INTO lots (code, commodity, quantity, unit, origin, created, created_by) "
                   "VALUES (?,?,?,?,?,?,?)", (code, commodity, quantity, unit, origin, created, created_by))

    @staticmethod
    def start_stay(tx: Tx, code: str, zone: str, start: float, who: str) -> None:
        tx.execute("INSERT INTO lot_stays (lot, zone, start, who_in) VALUES (?,?,?,?)", (code, zone, start, who))

    @staticmethod
    def end_stay(tx: Tx, stay_id: int, end: float, who: str) -> None:
        tx.execute("UPDATE lot_stays SET end = ?, who_out = ? WHERE id = ?", (end, who, stay_id))

    @staticmethod
    def check_out(tx: Tx, code: str, at: float, destination: str | None = None) -> None:
        tx.execute("UPDATE lots SET checked_out = ?, destination = ? WHERE code = ?", (at, destination, code))

    @staticmethod
    def set_lineage(tx: Tx, code: str, source: str | None, parents: list[str] | None) -> None:
        """Where a lot came from: the site that shipped it here, or the codes it was split or merged from."""
        tx.execute("UPDATE lots SET source = ?, parents = ? WHERE code = ?",
                   (source, json.dumps(parents) if parents else None, code))

    def lineage(self, code: str) -> tuple[str | None, str | None, list[str]]:
        """(destination, source, parent codes) of a lot."""
        row = self._db.one("SELECT destination, source, parents FROM lots WHERE code = ?", (code,))
        if row is None:
            return None, None, []
        return row[0], row[1], list(json.loads(row[2] or "[]"))
