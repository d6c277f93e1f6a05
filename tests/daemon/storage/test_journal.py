"""The journal keeps what it acknowledged, even across a SIGKILL mid-write."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.ports.errors import JournalFull
from daemon.ports.model import Quality, Quantity, Reading
from daemon.storage.journal import Journal

ROOT = Path(__file__).resolve().parents[3]


def reading(i: int, sensor: str = "s1", q: Quantity = Quantity.TEMPERATURE) -> Reading:
    return Reading("site", "z1", sensor, q, float(i) / 10, 1_700_000_000 + i, Quality.GOOD)


def test_wal_mode_and_roundtrip(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    assert j.journal_mode() == "wal"
    assert j.db._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: a commit survives a power cut
    stored = j.readings.append([reading(i) for i in range(5)] + [reading(1, "s2", Quantity.HUMIDITY)])
    assert [r.id for r in stored] == [1, 2, 3, 4, 5, 6]
    back = j.readings.read_after(0, 100)
    assert back == stored
    assert back[5].quantity is Quantity.HUMIDITY and back[5].sensor == "s2"
    assert j.readings.read_after(4, 100) == stored[4:]
    assert j.readings.max_id() == 6 and j.readings.count() == 6


def test_fault_readings_keep_value_and_note(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    r = Reading("site", "z1", "s1", Quantity.TEMPERATURE, 85.0, 1_700_000_000.5, Quality.FAULT, "known error value 85")
    j.readings.append([r])
    (back,) = j.readings.read_after(0, 10)
    assert back.quality is Quality.FAULT and back.value == 85.0 and back.note == "known error value 85"
    assert back.ts == 1_700_000_000.5 and not back.good


def test_query_filters_and_latest(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([reading(i) for i in range(10)] + [reading(i, "s2") for i in range(3)])
    got = j.readings.query(sensor="s1", start=1_700_000_002, end=1_700_000_005)
    assert [r.value for r in got] == [0.2, 0.3, 0.4]
    assert [r.value for r in j.readings.query(sensor="s1", limit=2, newest_first=True)] == [0.9, 0.8]
    assert j.readings.query(zone="nope") == []
    latest = {r.sensor: r.value for r in j.readings.latest()}
    assert latest == {"s1": 0.9, "s2": 0.2}


def test_cursor_is_durable(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    assert j.cursors.get("sink:a") == 0
    j.cursors.set("sink:a", 42)
    j.close()
    assert Journal(tmp_path / "j.db").cursors.get("sink:a") == 42


def test_snapshot_reads_see_one_state(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([reading(0)])
    with j.snapshot():
        first = j.read("SELECT COUNT(*) FROM readings")
        j.readings.append([reading(1)])  # the writer commits meanwhile
        with j.snapshot():  # nested: the same read transaction
            assert j.read("SELECT COUNT(*) FROM readings") == first == [(1,)]
    assert j.read("SELECT COUNT(*) FROM readings") == [(2,)]


def test_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([reading(0)])
    bad = Reading("site", "z9", "new", Quantity.TEMPERATURE, 1.0, 1.0)
    try:
        with j.transaction() as db:
            db.execute("INSERT INTO series (site, zone, sensor, quantity) VALUES ('a','b','c','d')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert j.db._db.execute("SELECT COUNT(*) FROM series").fetchone()[0] == 1
    assert j.readings.append([bad])[0].id == 2  # the writer still works after a rollback


WRITER = """
import sys, time
from daemon.storage.journal import Journal
from daemon.ports.errors import JournalFull
from daemon.ports.model import Quality, Quantity, Reading
j = Journal(sys.argv[1])
i = int(sys.argv[2])
while True:
    batch = [Reading("site", "z1", f"s{k % 7}", Quantity.TEMPERATURE, float(i + k), 1.7e9 + i + k) for k in range(50)]
    stored = j.readings.append(batch)
    print(stored[-1].id, flush=True)  # acknowledged: committed
    i += 50
"""


def test_full_journal_reports_the_full_disk_and_recovers(tmp_path: Path) -> None:
    # found by tests/faults: SQLite rolls back by itself on SQLITE_FULL, and our ROLLBACK then raised
    # "cannot rollback - no transaction is active", hiding the real cause from the log
    j = Journal(tmp_path / "j.db")
    j.readings.append([reading(0)])
    pages = j.db._db.execute("PRAGMA page_count").fetchone()[0]
    j.db._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(JournalFull, match="full") as refused:
        j.readings.append([Reading("site", "z1", f"s{i}", Quantity.TEMPERATURE, 1.0, 1_700_000_000 + i) for i in range(5000)])
    assert isinstance(refused.value.__cause__, sqlite3.OperationalError)  # mapped at the storage boundary
    j.db._db.execute("PRAGMA max_page_count=4294967294")
    assert [r.value for r in j.readings.append([reading(7)])] == [0.7]
    assert j.readings.count() == 2 and j.quick_check() == "ok"


def test_acknowledged_readings_survive_sigkill(tmp_path: Path) -> None:
    """A writer is killed at random moments; every batch it acknowledged is still there, intact."""
    db = tmp_path / "j.db"
    rng = random.Random(7)
    acked = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(8):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(round_ * 1_000_000)],
                             stdout=subprocess.PIPE, text=True, env=env)
        assert p.stdout is not None
        first = p.stdout.readline()  # at least one commit before the kill
        assert first.strip(), "writer printed nothing"
        time.sleep(rng.uniform(0.0, 0.15))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        lines = [first, *out.splitlines()]
        acked = max(acked, *(int(x) for x in lines if x.strip()))
        j = Journal(db)
        assert j.quick_check() == "ok"
        assert j.readings.max_id() >= acked, f"round {round_}: acknowledged id {acked} missing (max {j.readings.max_id()})"
        j.close()
    j = Journal(db)
    rows = j.readings.read_after(0, 10_000_000)
    assert len(rows) == j.readings.max_id() and len(rows) % 50 == 0  # whole batches only, no torn transaction


def test_run_mark_tells_an_unclean_stop(tmp_path: Path) -> None:
    """begin_run/end_run bracket a daemon's use; a mark left behind (power cut, SIGKILL) makes the next start check."""
    j = Journal(tmp_path / "j.db")
    assert j.begin_run() is None and j.run_mark.read_text().strip() == str(os.getpid())
    j.close()
    j.end_run()
    j = Journal(tmp_path / "j.db")
    assert j.begin_run() is None  # the previous stop was clean: no check needed
    j.readings.append([reading(0)])
    del j  # gone without end_run, as after a kill
    j = Journal(tmp_path / "j.db")
    assert j.begin_run() == "ok"
    assert j.readings.count() == 1


def test_read_values_after_is_read_rows_after_in_three_columns(tmp_path: Path) -> None:
    """The forwarders' fast path: the last id and (ts_ms, series, value); no value for a row that is
    not GOOD or has none, so that the caller reads that batch as full rows."""
    j = Journal(tmp_path / "j.db")
    j.readings.append([reading(i) for i in range(6)])
    with j.transaction() as db:
        db.execute("DELETE FROM readings WHERE id = 3")  # ids need not be contiguous
    j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 85.0, 1_700_000_100, Quality.FAULT, "85"),
              Reading("site", "z1", "s1", Quantity.HUMIDITY, None, 1_700_000_101)])
    rows = j.readings.read_rows_after(1, 3)
    assert j.readings.read_values_after(1, 3) == (5, [(ts, sid, v) for _, ts, sid, v, _, _, _ in rows])
    assert [r[0] for r in rows] == [2, 4, 5]
    last, values = j.readings.read_values_after(5, 10)
    assert last == 8 and [v for _, _, v in values] == [0.5, None, None]  # a FAULT, a GOOD without value
    assert j.readings.read_values_after(8, 10) == (8, [])
