"""Journal v9's layout: rows in arrival order, the series index filled by the roll, the `readings` view both."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.ports.model import Quantity, Reading
from daemon.storage import rollups
from daemon.storage.journal import Journal
from daemon.storage.schema import SCHEMA

T0 = 1_767_225_600.0


def _reading(sensor: str, ts: float, value: float) -> Reading:
    return Reading("site", "z1", sensor, Quantity.TEMPERATURE, value, ts)


def _v7(path: Path, rows: int, rolled: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    for n, ddl in enumerate(SCHEMA[:7], start=1):
        db.executescript(ddl)
        db.execute(f"PRAGMA user_version={n}")
    db.executemany("INSERT INTO series (id, site, zone, sensor, quantity) VALUES (?, 'site', 'z1', ?, 'temperature')",
                   [(1, "a"), (2, "b")])
    db.executemany("INSERT INTO readings (ts_ms, series, value) VALUES (?, ?, ?)",
                   [(int(T0 * 1000) + k * 30_000, 1 + k % 2, float(k)) for k in range(rows)])
    db.execute("UPDATE rollup_state SET value = ? WHERE name = 'raw'", (rolled,))
    db.close()


def test_a_v7_journal_migrates_and_answers_the_same_queries(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _v7(path, rows=200, rolled=120)
    j = Journal(path)
    assert j.read("PRAGMA user_version")[0][0] == len(SCHEMA)
    assert j.read("SELECT COUNT(*) FROM readings_by_series")[0][0] == 120  # the rolled ids only
    got = j.readings.query(sensor="a", start=T0, end=T0 + 3600 * 24)
    assert [r.value for r in got] == [float(k) for k in range(0, 200, 2)]  # index part and tail, in time order
    assert {r.sensor: r.value for r in j.readings.latest()} == {"a": 198.0, "b": 199.0}
    assert j.read("SELECT COUNT(*) FROM readings")[0][0] == 200
    j.close()


def test_a_commit_leaves_the_series_index_alone_and_the_roll_fills_it(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([_reading("a", T0 + k, float(k)) for k in range(10)])
    assert j.read("SELECT COUNT(*) FROM readings_by_series")[0][0] == 0  # no per-series page per commit
    assert [r.value for r in j.readings.query(sensor="a")] == [float(k) for k in range(10)]
    rollups.catch_up(j)
    assert j.read("SELECT COUNT(*) FROM readings_by_series")[0][0] == 10
    assert [r.value for r in j.readings.query(sensor="a", start=T0 + 5)] == [5.0, 6.0, 7.0, 8.0, 9.0]
    j.close()


def test_plain_sql_on_the_view_still_inserts_and_deletes(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([_reading("a", T0, 1.0)])
    rollups.catch_up(j)
    sid = j.read("SELECT series FROM readings")[0][0]
    with j.transaction() as tx:
        tx.execute("INSERT INTO readings (ts_ms, series, value) VALUES (?, ?, 2.0)", (int(T0 * 1000) + 1, sid))
        tx.execute("DELETE FROM readings WHERE value = 1.0")
    assert [r.value for r in j.readings.query(sensor="a")] == [2.0]
    assert j.read("SELECT COUNT(*) FROM readings_by_series")[0][0] == 0
    j.close()
