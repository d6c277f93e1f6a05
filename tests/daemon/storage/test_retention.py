"""Retention: raw readings past raw_retention are deleted once rolled up, never before every forwarder has them."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from daemon.ports.clock import ManualClock
from daemon.ports.model import Quality, Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage import rollups as tiers
from daemon.storage.journal import Journal
from daemon.storage.retention import Retention
from daemon.storage.schema import SCHEMA

DAY = 86400.0
NOW = 1_763_800_000.0  # not on a 5-minute boundary: the cutoff floors to one
OLD = NOW - 100 * DAY  # older than the 90-day default


def reading(ts: float, value: float | None, sensor: str = "s1", quality: Quality = Quality.GOOD) -> Reading:
    return Reading("c1", "z1", sensor, Quantity.TEMPERATURE, value, ts, quality, "" if quality == 0 else "fault")


def retention(journal: Journal, cursors: list[str] | None = None, **kw: Any) -> Retention:
    return Retention(journal, ManualClock(NOW), Stats(), raw_retention=90 * DAY, rollup_retention=731 * DAY,
                     cursors=cursors or [], **kw)


def rollups(journal: Journal, before: float | None = None, table: str = "rollup_5m") -> list[tuple[Any, ...]]:
    """Rollup rows, those of buckets before `before` only when given."""
    with journal.transaction() as db:
        return list(db.execute(
            f"SELECT s.sensor, r.bucket_ms, r.n, r.min, r.mean, r.max, r.faults FROM {table} r "  # noqa: S608 - table is the test's own constant
            "JOIN series s ON s.id = r.series WHERE r.bucket_ms < ? ORDER BY s.sensor, r.bucket_ms",
            (int((before or 1e11) * 1000),)))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.db")


def bucket(ts: float) -> int:
    return int(ts * 1000) // 300_000 * 300_000


def test_old_readings_are_deleted_their_rollups_stay(journal: Journal) -> None:
    b0 = bucket(OLD)
    old = [reading(b0 / 1000 + i * 60, v) for i, v in enumerate([1.0, 2.0, 4.0, 5.0])]  # one bucket
    old += [reading(b0 / 1000 + 300, None, quality=Quality.FAULT), reading(b0 / 1000 + 310, 3.5, "s2")]
    recent = [reading(NOW - DAY, 6.0), reading(NOW - 60, 7.0)]
    journal.readings.append(old + recent)
    result = retention(journal).run_pass()
    assert result.deleted == 6 and result.held == 0
    assert rollups(journal, before=NOW - 2 * DAY) == [
        ("s1", b0, 4, 1.0, 3.0, 5.0, 0),
        ("s1", b0 + 300_000, 0, None, None, None, 1),  # a bucket of faults only: counted, no values
        ("s2", b0 + 300_000, 1, 3.5, 3.5, 3.5, 0),
    ]
    assert [r.value for r in journal.readings.read_after(0, 100)] == [6.0, 7.0]
    assert [row[2] for row in rollups(journal)][-2:] == [1, 1]  # the rollups count the recent readings too
    h0 = b0 // 3_600_000 * 3_600_000  # both 5-minute buckets are in this hour
    assert rollups(journal, before=NOW - 2 * DAY, table="rollup_1h") == [
        ("s1", h0, 4, 1.0, 3.0, 5.0, 1), ("s2", h0, 1, 3.5, 3.5, 3.5, 0)]


def test_forwarder_cursor_holds_raw_rows(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    stored = journal.readings.append([reading(OLD + i * 60, float(i)) for i in range(10)])
    journal.cursors.set("sink:central", int(stored[3].id or 0))  # central has 4 of them
    journal.cursors.set("sink:backup", int(stored[7].id or 0))
    with caplog.at_level(logging.WARNING, "coldchain.retention"):
        result = retention(journal, ["sink:central", "sink:backup"]).run_pass()
    assert result.deleted == 4 and result.held == 6
    assert [r.value for r in journal.readings.read_after(0, 100)] == [float(i) for i in range(4, 10)]
    assert "keeping 6 raw readings" in caplog.text and "sink:central" in caplog.text
    journal.cursors.set("sink:central", int(stored[-1].id or 0))
    journal.cursors.set("sink:backup", int(stored[-1].id or 0))
    again = retention(journal, ["sink:central", "sink:backup"]).run_pass()
    assert again.deleted == 5 and again.held == 0 and journal.readings.count() == 1  # the newest row stays
    total = sum(n for _, _, n, *_ in rollups(journal))
    assert total == 10  # every reading, deleted or kept, counted once


def test_new_sink_without_cursor_holds_everything(journal: Journal) -> None:
    journal.readings.append([reading(OLD, 1.0)])
    assert retention(journal, ["sink:new"]).run_pass().deleted == 0
    assert journal.readings.count() == 1


def test_late_reading_merges_into_its_bucket(journal: Journal) -> None:
    b0 = bucket(OLD) / 1000
    journal.readings.append([reading(b0 + 10, 2.0), reading(b0 + 20, 4.0), reading(NOW, 5.0)])
    retention(journal).run_pass()
    late = [reading(b0 + 30, 9.0), reading(b0 + 40, None, quality=Quality.FAULT)]  # device buffer, sent late
    journal.readings.append([*late, reading(NOW + 60, 5.0)])
    retention(journal).run_pass()
    assert rollups(journal, before=NOW - DAY) == [("s1", bucket(OLD), 3, 2.0, 5.0, 9.0, 1)]


def test_windows_give_the_same_result(tmp_path: Path) -> None:
    rows = [reading(OLD + i * 37, float(i % 11), f"s{i % 3}") for i in range(500)]
    results = []
    for window in (7.0, 450.0, 86400.0):  # windows that cut buckets in odd places
        j = Journal(tmp_path / f"j{window}.db")
        j.readings.append([*rows, reading(NOW, 1.0)])
        retention(j, window=window).run_pass()
        results.append([tuple(round(x, 9) if isinstance(x, float) else x for x in row) for row in rollups(j)])
        assert j.readings.count() == 1
    assert results[0] == results[1] == results[2]  # means merged across window borders equal one-go means


def test_rollups_past_their_retention_are_dropped(journal: Journal) -> None:
    journal.readings.append([reading(NOW - 800 * DAY, 1.0), reading(OLD, 2.0), reading(NOW, 3.0)])
    result = retention(journal).run_pass()
    assert result.rollups_dropped == 2  # its 5-minute row and its hour
    assert [row[1] for row in rollups(journal, before=NOW - DAY)] == [bucket(OLD)]
    assert len(rollups(journal, before=NOW - DAY, table="rollup_1h")) == 1


def test_version_1_journal_gains_the_rollup_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for stmt in SCHEMA[0].split(";"):
        if stmt.strip():
            db.execute(stmt)
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    j = Journal(path)
    assert j.db._db.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)
    j.readings.append([reading(OLD, 1.0), reading(NOW, 2.0)])
    assert retention(j).run_pass().deleted == 1


def test_newest_row_survives_so_ids_keep_rising(journal: Journal) -> None:
    """A center idle for a season: every row is old and sent, yet the next reading must get a new id."""
    stored = journal.readings.append([reading(OLD + i, float(i)) for i in range(5)])
    journal.cursors.set("sink:central", int(stored[-1].id or 0))
    assert retention(journal, ["sink:central"]).run_pass().deleted == 4
    assert journal.readings.count() == 1
    (fresh,) = journal.readings.append([reading(NOW, 9.0)])
    assert fresh.id == int(stored[-1].id or 0) + 1  # after the cursor: it will be forwarded


def test_rows_the_rollups_have_not_reached_are_kept(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reading deleted before a roll reached it would vanish from the history: retention waits for the rolls."""
    journal.readings.append([reading(OLD + i * 60, float(i)) for i in range(5)] + [reading(NOW, 1.0)])
    monkeypatch.setattr(tiers, "catch_up", lambda *a, **kw: 0)  # the rolls are behind (say, mid-backfill)
    assert retention(journal).run_pass().deleted == 0
    tiers.roll(journal, max_ids=3)
    assert retention(journal).run_pass().deleted == 3
    assert [r.value for r in journal.readings.read_after(0, 100)] == [3.0, 4.0, 1.0]
