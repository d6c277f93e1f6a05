"""Journal v14: raw readings in partitions that the roll opens and retention drops whole."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import pytest

from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage import partitions, rollups
from daemon.storage.journal import Journal
from daemon.storage.retention import Retention
from daemon.storage.schema import SCHEMA

HOUR = 3600.0
DAY = 24 * HOUR
T0 = 1_767_225_600.0


def day_of(j: Journal, start: float, sensors: tuple[str, ...] = ("a", "b"), every: float = 600.0,
           hours: float = 24.0) -> None:
    """Readings of `sensors` every `every` seconds for `hours` from `start`, then a roll (a day's roll on a box)."""
    n = int(hours * HOUR / every)
    j.readings.append([Reading("site", "z1", s, Quantity.TEMPERATURE, float(k % 50), start + k * every)
                       for k in range(n) for s in sensors])
    rollups.catch_up(j)


def count(j: Journal, table: str) -> int:
    """Rows of one of the journal's own tables (a partition's name from `partitions`)."""
    return int(j.read(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 - names from daemon.storage.partitions


def ks(j: Journal) -> list[int]:
    return [int(k) for (k,) in j.read("SELECT k FROM raw_partitions ORDER BY k")]


def retention(j: Journal, now: float, raw_days: float = 2.0) -> Retention:
    return Retention(j, ManualClock(now), Stats(), raw_retention=raw_days * DAY, rollup_retention=731 * DAY,
                     cursors=[])


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.db")


def test_the_roll_opens_a_partition_per_day_and_the_views_span_them(journal: Journal) -> None:
    for d in range(3):
        day_of(journal, T0 + d * DAY)
    assert ks(journal) == [0, 1, 2, 3]  # each day's roll opened the next; the newest is empty yet
    day_of(journal, T0 + 3 * DAY, hours=1)
    ids = [int(i) for (i,) in journal.read("SELECT id FROM readings_log ORDER BY id")]
    assert ids == list(range(1, len(ids) + 1))  # ids rise across partitions without a gap
    assert count(journal, partitions.log_table(3)) == 12
    got = journal.readings.query(sensor="a", start=T0 + DAY - 1200, end=T0 + DAY + 1200)
    assert [r.ts - T0 - DAY for r in got] == [-1200, -600, 0, 600]  # across a partition's edge
    assert journal.readings.max_id() == ids[-1]
    assert {r.sensor: r.ts for r in journal.readings.latest()} == {"a": T0 + 3 * DAY + 3000, "b": T0 + 3 * DAY + 3000}
    rows = journal.readings.read_rows_after(ids[0] + 280, 10)
    assert [r[0] for r in rows] == list(range(ids[0] + 281, ids[0] + 291))  # by id, over partitions 0 and 1
    journal.close()


def test_a_short_span_stays_in_one_partition(journal: Journal) -> None:
    for h in range(8):  # rolls every 3 hours (a big center's tail): no partition of 3 hours each
        day_of(journal, T0 + h * 3 * HOUR, hours=3)
    assert ks(journal) == [0, 1]  # 21 h in partition 0 (the first roll past 20 h opened 1), 3 h in 1
    journal.close()


def test_a_restart_goes_on_in_the_newest_partition(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    day_of(j, T0)
    day_of(j, T0 + DAY, hours=1)
    top = j.readings.max_id()
    j.close()
    j = Journal(tmp_path / "j.db")
    stored = j.readings.append([Reading("site", "z1", "a", Quantity.TEMPERATURE, 1.0, T0 + 2 * DAY)])
    assert stored[0].id == top + 1
    assert count(j, partitions.log_table(1)) == 12 + 1 and j.readings.max_id() == top + 1
    j.close()


def wal_frames(path: Path) -> int:
    """Frames in the journal's WAL (page images written since the last checkpoint)."""
    wal = Path(str(path) + "-wal").read_bytes()
    if len(wal) < 32:
        return 0
    size = struct.unpack(">I", wal[8:12])[0]
    return (len(wal) - 32) // (24 + size)


def test_retention_drops_a_past_partition_whole_without_writing_its_pages(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path)
    sensors = tuple(f"s{i}" for i in range(20))
    for d in range(4):
        day_of(j, T0 + d * DAY, sensors, every=60.0)
    j.db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = j.read("SELECT COUNT(*) FROM dbstat WHERE name IN (?, ?)",
                   (partitions.log_table(0), partitions.index_table(0)))[0][0]
    before = j.read("SELECT COUNT(*) FROM readings_log")[0][0]
    result = retention(j, T0 + 4 * DAY + 600, raw_days=3.0).run_pass()  # day 0 is past: its partition goes
    assert result.deleted == 20 * 1440 + 20 * 10  # and day 1's first 10 minutes, by range delete
    assert ks(j) == [1, 2, 3, 4]
    assert j.read("SELECT COUNT(*) FROM readings_log")[0][0] == before - result.deleted
    assert j.read("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", (partitions.log_table(0),))[0][0] == 0
    assert wal_frames(path) < pages / 10, (wal_frames(path), pages)  # a range DELETE writes every one of them
    assert j.read("SELECT SUM(n) FROM rollup_5m")[0][0] == 4 * 20 * 1440  # the tiers keep counting them
    assert j.readings.query(sensor="s0", start=T0, end=T0 + DAY) == []
    assert len(j.readings.query(sensor="s0", start=T0 + DAY, end=T0 + 2 * DAY)) == 1440 - 10
    j.close()


def test_a_late_reading_keeps_its_partition_and_the_rest_of_it_goes_by_range(journal: Journal) -> None:
    day_of(journal, T0)
    # a device's buffer, sent late, of a time the retention window keeps: it lands in partition 1 with day 1
    journal.readings.append([Reading("site", "z1", "c", Quantity.TEMPERATURE, 9.0, T0 + 3 * DAY)])
    day_of(journal, T0 + DAY)
    day_of(journal, T0 + 2 * DAY)
    day_of(journal, T0 + 3 * DAY, hours=1)
    result = retention(journal, T0 + 3 * DAY + 1200).run_pass()  # cutoff: T0 + DAY + 1200
    assert 0 not in ks(journal) and 1 in ks(journal)
    assert [r.value for r in journal.readings.query(sensor="c")] == [9.0]
    left = journal.readings.query(sensor="a", start=T0, end=T0 + 2 * DAY)
    assert left[0].ts == T0 + DAY + 1200  # day 1's rows before the cutoff went by range delete
    assert result.deleted == 2 * 144 + 2 * 2
    journal.close()


def test_the_newest_row_survives_even_in_a_closed_partition(journal: Journal) -> None:
    day_of(journal, T0)  # then the center goes quiet for a season: partition 1 stays empty
    top = journal.readings.max_id()
    retention(journal, T0 + 100 * DAY).run_pass()
    assert journal.readings.max_id() == top  # partition 0 kept for its newest row (ids must keep rising)
    stored = journal.readings.append([Reading("site", "z1", "a", Quantity.TEMPERATURE, 1.0, T0 + 100 * DAY)])
    assert stored[0].id == top + 1
    journal.close()


def test_plain_sql_through_the_view_after_a_new_partition(journal: Journal) -> None:
    day_of(journal, T0, hours=21)
    top = journal.readings.max_id()
    sid = journal.read("SELECT series FROM readings LIMIT 1")[0][0]
    with journal.transaction() as tx:
        tx.execute("INSERT INTO readings (ts_ms, series, value) VALUES (?, ?, 2.5)", (int((T0 + DAY) * 1000), sid))
        tx.execute("DELETE FROM readings WHERE id = 1")
    assert count(journal, partitions.log_table(1)) == 1
    assert journal.read("SELECT id, value FROM readings_log WHERE id > ?", (top,)) == [(top + 1, 2.5)]
    assert journal.read("SELECT COUNT(*) FROM readings WHERE id = 1")[0][0] == 0
    journal.close()


def test_a_v13_journal_becomes_partition_0_without_copying_a_row(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    db = sqlite3.connect(path, isolation_level=None)
    for n, ddl in enumerate(SCHEMA[:13], start=1):
        db.executescript(ddl)
        db.execute(f"PRAGMA user_version={n}")
    db.execute("INSERT INTO series (id, site, zone, sensor, quantity) VALUES (1, 'site', 'z1', 'a', 'temperature')")
    db.executemany("INSERT INTO readings (ts_ms, series, value) VALUES (?, 1, ?)",
                   [(int(T0 * 1000) + k * 60_000, float(k)) for k in range(100)])
    db.execute("INSERT INTO readings_by_series SELECT series, ts_ms, id FROM readings_log WHERE id <= 60")
    db.execute("UPDATE rollup_state SET value = 60 WHERE name = 'raw'")
    db.close()
    j = Journal(path)
    assert j.read("SELECT k, first_id, min_ts, max_ts FROM raw_partitions") == [
        (0, 1, int(T0 * 1000), int(T0 * 1000) + 59 * 60_000)]  # the rolled rows' times; the tail comes next roll
    assert [r.value for r in j.readings.query(sensor="a")] == [float(k) for k in range(100)]
    rollups.catch_up(j)
    assert j.read("SELECT max_ts FROM raw_partitions")[0][0] == int(T0 * 1000) + 99 * 60_000
    j.close()


def test_a_forwarder_behind_keeps_a_past_partition_until_it_has_sent_it(journal: Journal) -> None:
    for d in range(3):
        day_of(journal, T0 + d * DAY)
    first_of_1 = journal.read("SELECT first_id FROM raw_partitions WHERE k = 1")[0][0]
    with journal.transaction() as tx:  # the uplink has sent the first 100 readings only
        tx.execute("INSERT INTO cursors (name, last_id, updated) VALUES ('sink:influx', 100, 0)")
    keep = Retention(journal, ManualClock(T0 + 3 * DAY), Stats(), raw_retention=DAY, rollup_retention=731 * DAY,
                     cursors=["sink:influx"])
    assert keep.run_pass().deleted == 100 and ks(journal) == [0, 1, 2, 3]  # by range, and only what was sent
    last, values = journal.readings.read_values_after(100, 10_000)
    assert len(values) == 3 * 288 - 100 and last == journal.readings.max_id()  # by id across partitions
    with journal.transaction() as tx:
        tx.execute("UPDATE cursors SET last_id = ?", (first_of_1 + 10,))
    keep.run_pass()
    assert ks(journal) == [1, 2, 3]  # partition 0 all sent now: dropped
    journal.close()
