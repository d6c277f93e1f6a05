"""Lot events (`lot_events`) and loggers' readings attached to lots in transit (`transit_logs`).

One row per lot change, written in the change's own transaction (`daemon/lots/store.py`), so an event
exists exactly when the change does. Ids grow in the order the changes were entered: the uplink's
cursor (`epcis:<sink>`) follows them, and `daemon/lots/epcis.py` turns each into an EPCIS 2.0 event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.storage.db import Database, Tx

_COLS = "id, ts, kind, lot, zone, ended_zone, ended_start, peer, inputs, outputs, who, recorded, uid"


@dataclass(frozen=True, slots=True)
class LotEvent:
    """One lot change. `kind`: commission, receive, move, ship, check_out, split, merge. `ended_zone` /
    `ended_start`: the stay this change ended (its temperature report belongs to the event). `peer`: the
    destination site (ship) or source site (receive). `inputs` / `outputs`: codes of a split or merge."""

    id: int
    ts: float
    kind: str
    lot: str
    zone: str | None
    ended_zone: str | None
    ended_start: float | None
    peer: str | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    who: str
    recorded: float
    uid: str | None = None  # the EPCIS eventID's UUID, kept with the event (None only before `fill_uids` ran)


def _event(r: tuple[Any, ...]) -> LotEvent:
    return LotEvent(int(r[0]), float(r[1]), str(r[2]), str(r[3]), r[4], r[5], r[6], r[7],
                    tuple(json.loads(r[8] or "[]")), tuple(json.loads(r[9] or "[]")), str(r[10]), float(r[11]),
                    r[12])


@dataclass(frozen=True, slots=True)
class TransitLog:
    """A logger's readings (epoch s, °C) for a lot between two sites, as imported."""

    id: int
    lot: str
    logger: str
    source: str  # the file it came from, for messages and the record
    start: float
    end: float
    readings: tuple[tuple[float, float], ...]
    imported: float
    who: str


class LotEvents:
    """The `lot_events` and `transit_logs` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def after(self, last_id: int, limit: int) -> list[LotEvent]:
        """Events with id > last_id, oldest first (the uplink's read)."""
        return [_event(r) for r in self._db.read(f"SELECT {_COLS} FROM lot_events WHERE id > ? ORDER BY id LIMIT ?",
                                                 (last_id, limit))]

    def of_lots(self, codes: list[str]) -> list[LotEvent]:
        """The events of these lots, or that took them as inputs (a merge into another code), in entry order."""
        marks = ",".join("?" * len(codes))
        likes = " OR ".join("inputs LIKE ?" for _ in codes)
        return [_event(r) for r in self._db.read(
            f"SELECT {_COLS} FROM lot_events WHERE lot IN ({marks}) OR {likes} ORDER BY id",
            [*codes, *(f'%{json.dumps(c)}%' for c in codes)])]

    def between(self, start: float, end: float, limit: int = 100_000) -> list[LotEvent]:
        """Events that happened in [start, end), in the order they were entered."""
        return [_event(r) for r in self._db.read(
            f"SELECT {_COLS} FROM lot_events WHERE ts >= ? AND ts < ? ORDER BY id LIMIT ?", (start, end, limit))]

    def max_id(self) -> int:
        row = self._db.one("SELECT COALESCE(MAX(id), 0) FROM lot_events")
        return int(row[0]) if row else 0

    def fill_uids(self, legacy: Callable[[int], str]) -> int:
        """Give rows written before uids were kept the id they were sent under (`legacy(id)`); how many."""
        rows = self._db.read("SELECT id FROM lot_events WHERE uid IS NULL ORDER BY id")
        if rows:
            with self._db.transaction() as tx:
                for (rid,) in rows:
                    tx.execute("UPDATE lot_events SET uid = ? WHERE id = ? AND uid IS NULL", (legacy(int(rid)), rid))
        return len(rows)

    def transit(self, code: str) -> list[TransitLog]:
        rows = self._db.read("SELECT id, lot, logger, source, start, end, readings, imported, who FROM transit_logs "
                             "WHERE lot = ? ORDER BY start, id", (code,))
        return [TransitLog(int(r[0]), r[1], r[2], r[3], r[4], r[5], tuple((float(t), float(v)) for t, v in
                                                                          json.loads(r[6])), r[7], r[8]) for r in rows]

    # -- inside the caller's transaction

    @staticmethod
    def add(tx: Tx, ts: float, kind: str, lot: str, who: str, recorded: float, *, zone: str | None = None,
            ended: tuple[str, float] | None = None, peer: str | None = None, inputs: list[str] | None = None,
            outputs: list[str] | None = None) -> None:
        tx.execute("INSERT INTO lot_events (ts, kind, lot, zone, ended_zone, ended_start, peer, inputs, outputs, who, "
                   "recorded, uid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   (ts, kind, lot, zone, ended[0] if ended else None, ended[1] if ended else None, peer,
                    json.dumps(inputs) if inputs else None, json.dumps(outputs) if outputs else None, who, recorded,
                    str(uuid.uuid4())))

    @staticmethod
    def add_transit(tx: Tx, lot: str, logger: str, source: str, readings: list[tuple[float, float]], imported: float,
                    who: str) -> int:
        cur = tx.execute("INSERT INTO transit_logs (lot, logger, source, start, end, readings, imported, who) "
                         "VALUES (?,?,?,?,?,?,?,?)", (lot, logger, source, readings[0][0], readings[-1][0],
                                                      json.dumps(readings), imported, who))
        return int(cur.lastrowid or 0)
