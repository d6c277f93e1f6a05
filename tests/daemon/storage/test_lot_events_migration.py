"""The lot-events migration back-fills the events of lots recorded before it, in the order they happened, so an
EPCIS export and the uplink cover them too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.storage.journal import Journal
from daemon.storage.schema import SCHEMA

T0 = 1_767_225_600.0
MIGRATION = next(i for i, ddl in enumerate(SCHEMA) if "CREATE TABLE lot_events" in ddl)


def test_lots_recorded_before_get_their_events(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    db = sqlite3.connect(path, isolation_level=None)
    for n, ddl in enumerate(SCHEMA[:MIGRATION], start=1):
        db.executescript(ddl)
        db.execute(f"PRAGMA user_version={n}")
    db.executemany("INSERT INTO lots (code, commodity, created, created_by, checked_out) VALUES (?,?,?,?,?)",
                   [("OLD-1", "mandarin", T0, "li", T0 + 7200), ("OLD-2", "kiwifruit", T0 + 600, "wang", None)])
    db.executemany("INSERT INTO lot_stays (lot, zone, start, end, who_in, who_out) VALUES (?,?,?,?,?,?)",
                   [("OLD-1", "z1", T0, T0 + 3600, "li", "li"), ("OLD-1", "z2", T0 + 3600, T0 + 7200, "li", "zhao"),
                    ("OLD-2", "z1", T0 + 600, None, "wang", None)])
    db.close()
    j = Journal(path)
    got = [(e.kind, e.lot, e.ts, e.zone, e.ended_zone, e.ended_start, e.who) for e in j.lot_events.after(0, 10)]
    assert got == [("commission", "OLD-1", T0, "z1", None, None, "li"),
                   ("commission", "OLD-2", T0 + 600, "z1", None, None, "wang"),
                   ("move", "OLD-1", T0 + 3600, "z2", "z1", T0, "li"),
                   ("check_out", "OLD-1", T0 + 7200, None, "z2", T0 + 3600, "zhao")]
    assert j.lots.lineage("OLD-1") == (None, None, [])
