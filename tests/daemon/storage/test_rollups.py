"""Rollups: every reading counted once in the 5-minute and hourly tiers, late ones in their old bucket,
and journal v6's backfill of a box that already has months of raw rows and retention's 5-minute rows."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from daemon.ports.model import Quality, Quantity, Reading
from daemon.ports.stats import Stats
from daemon.reports import history
from daemon.storage import rollups
from daemon.storage.journal import Journal
from daemon.storage.schema import SCHEMA

T0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai, on an hour boundary
Tier = dict[tuple[str, int], tuple[int, float | None, float | None, float | None, int]]


def reading(ts: float, value: float | None, sensor: str = "s1", quality: Quality = Quality.GOOD) -> Reading:
    return Reading("c1", "z1", sensor, Quantity.TEMPERATURE, value, ts, quality, "" if quality == 0 else "fault")


def brute(readings: Iterable[Reading], width_s: int) -> Tier:
    """The tier as it should be: per (sensor, bucket) n, min, mean, max of GOOD values, and faults."""
    good: dict[tuple[str, int], list[float]] = defaultdict(list)
    faults: dict[tuple[str, int], int] = defaultdict(int)
    w = width_s * 1000
    for r in readings:
        key = (r.sensor, round(r.ts * 1000) // w * w)
        if r.quality == Quality.GOOD and r.value is not None:
            good[key].append(r.value)
        else:
            faults[key] += 1
    return {k: (len(good[k]), min(good[k], default=None), sum(good[k]) / len(good[k]) if good[k] else None,
                max(good[k], default=None), faults[k]) for k in good.keys() | faults.keys()}


def tier(journal: Journal, table: str) -> Tier:
    rows = journal.read(f"SELECT s.sensor, t.bucket_ms, t.n, t.min, t.mean, t.max, t.faults FROM {table} t "  # noqa: S608 - table is the test's own constant
                        "JOIN series s ON s.id = t.series")
    return {(s, b): (n, lo, mean, hi, f) for s, b, n, lo, mean, hi, f in rows}


def same(got: Tier, want: Tier) -> None:
    assert got.keys() == want.keys()
    for k, (n, lo, mean, hi, f) in want.items():
        assert got[k][:2] == (n, lo) and got[k][3:] == (hi, f), k
        assert got[k][2] == pytest.approx(mean, abs=1e-9), k


def random_readings(rng: random.Random, n: int, span_s: float) -> list[Reading]:
    out = []
    for _ in range(n):
        q = rng.choice([Quality.GOOD] * 6 + [Quality.FAULT])
        value = None if q != Quality.GOOD or rng.random() < 0.05 else round(rng.uniform(-2, 12), 1)
        out.append(reading(T0 + rng.uniform(0, span_s), value, rng.choice(["s1", "s2"]), q))
    return out


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.db")


def test_tiers_count_every_reading_once_whatever_the_order(journal: Journal) -> None:
    rng = random.Random(8)
    readings = random_readings(rng, 600, 2 * 86400)
    for i in range(0, len(readings), 37):  # batches out of time order, rolled at odd moments, chunks of 50 ids
        journal.readings.append(readings[i:i + 37])
        if rng.random() < 0.5:
            rollups.catch_up(journal, max_ids=50)
    rollups.catch_up(journal)
    same(tier(journal, "rollup_5m"), brute(readings, 300))
    same(tier(journal, "rollup_1h"), brute(readings, 3600))
    assert rollups.state(journal) == rollups.State(journal.readings.max_id(), True, 0)


def test_a_late_reading_lands_in_its_old_bucket(journal: Journal) -> None:
    first = [reading(T0 + 60 * i, 5.0) for i in range(120)]
    journal.readings.append(first)
    rollups.catch_up(journal)
    late = [reading(T0 + 30, 1.0), reading(T0 + 90, None, quality=Quality.FAULT)]  # a device buffer, sent late
    journal.readings.append([*late, reading(T0 + 7300, 6.0)])
    assert rollups.roll(journal) == 3
    assert tier(journal, "rollup_5m")[("s1", int(T0 * 1000))] == (6, 1.0, 26 / 6, 5.0, 1)
    assert tier(journal, "rollup_1h")[("s1", int(T0 * 1000))] == (61, 1.0, pytest.approx(301 / 61), 5.0, 1)
    assert rollups.roll(journal) == 0  # nothing left: the cursor moved


def test_the_roller_keeps_the_tiers_current(journal: Journal) -> None:
    async def scenario() -> None:
        roller = rollups.Roller(journal, Stats(), interval=0.01)
        task = asyncio.create_task(roller.run())
        journal.readings.append([reading(T0 + i, float(i)) for i in range(10)])
        for _ in range(500):  # bounded wait for the task's next pass, no timing asserted
            if rollups.state(journal).lag == 0:
                break
            await asyncio.sleep(0.01)
        roller.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert tier(journal, "rollup_5m") == {("s1", int(T0 * 1000)): (10, 0.0, 4.5, 9.0, 0)}


def v5_journal(path: Path, raw: list[Reading], deleted: list[Reading]) -> None:
    """A journal as v5 left it: raw rows, plus retention's 5-minute rows of readings it deleted."""
    db = sqlite3.connect(path)
    for ddl in SCHEMA[:5]:
        for stmt in ddl.split(";"):
            if stmt.strip():
                db.execute(stmt)
    db.execute("PRAGMA user_version=5")
    db.executemany("INSERT INTO series (id, site, zone, sensor, quantity) VALUES (?, 'c1', 'z1', ?, 'temperature')",
                   [(1, "s1"), (2, "s2")])
    sid = {"s1": 1, "s2": 2}
    db.executemany("INSERT INTO rollup_5m (series, bucket_ms, n, min, mean, max, faults) VALUES (?,?,?,?,?,?,?)",
                   [(sid[s], b, *row) for (s, b), row in brute(deleted, 300).items()])
    db.executemany("INSERT INTO readings (ts_ms, series, value, quality, note) VALUES (?, ?, ?, ?, ?)",
                   [(round(r.ts * 1000), sid[r.sensor], r.value, int(r.quality), r.note or None) for r in raw])
    db.commit()
    db.close()


def chart(journal: Journal, step_points: int, start: float, end: float) -> list[Any]:
    return [(s.sensor, s.step, s.rows) for s in history.history(journal, start=start, end=end, max_points=step_points)]


def same_chart(got: list[Any], want: list[Any]) -> None:
    """Equal but for the means' 3rd decimal: sums taken in another order may round it the other way."""
    assert [(s, step, [(r[0], r[1], r[3], r[4]) for r in rows]) for s, step, rows in got] == \
        [(s, step, [(r[0], r[1], r[3], r[4]) for r in rows]) for s, step, rows in want]
    for (_, _, a), (_, _, b) in zip(got, want, strict=True):
        assert [r[2] for r in a] == pytest.approx([r[2] for r in b], abs=0.0011)


def archived(j: Journal) -> dict[tuple[int, int], tuple[Any, ...]]:
    out = {}
    for sid in (1, 2):
        for b, lo, sm, hi, n in j.read(rollups.ARCHIVED_5M, {"sid": sid, "a": 0, "b": 10**13}):
            out[(sid, b)] = (n, lo, pytest.approx(sm / n, abs=1e-9), hi)
    return out


def archived_want(deleted: list[Reading]) -> dict[tuple[int, int], tuple[Any, ...]]:
    sid = {"s1": 1, "s2": 2}
    return {(sid[s], b): (n, lo, mean, hi) for (s, b), (n, lo, mean, hi, _) in brute(deleted, 300).items() if n}


def test_v6_backfills_the_tiers_from_raw_rows_and_retentions_rows(tmp_path: Path) -> None:
    rng = random.Random(6)
    deleted = random_readings(rng, 400, 86400)  # day 1: only retention's 5-minute rows are left
    raw = [reading(r.ts + 86400, r.value, r.sensor, r.quality) for r in random_readings(rng, 900, 3 * 86400)]
    raw += [reading(T0 + rng.uniform(0, 86400), 3.0)]  # a late raw row among the deleted ones' buckets
    path = tmp_path / "v5.db"
    v5_journal(path, raw, deleted)
    j = Journal(path)
    assert j.read("PRAGMA user_version") == [(len(SCHEMA),)]
    assert j.read("SELECT name, value FROM rollup_state ORDER BY name") == [
        ("deleted_before", max(b for _, b in brute(deleted, 300)) + 300_000), ("hourly", 0), ("raw", 0)]
    st = rollups.state(j)
    assert st.widths() == (300,) and st.lag == len(raw)  # the hourly tier waits for its backfill
    everything = deleted + raw
    whole_hours = chart(j, 40, T0, T0 + 4 * 86400)  # 3 h steps: from the 5-minute tier plus the tail for now
    assert archived(j) == archived_want(deleted)  # what reports take from the rollups: the deleted readings
    assert rollups.catch_up(j, max_ids=100) == j.readings.max_id()
    assert archived(j) == archived_want(deleted)  # still only those, now that the rollups hold the raw rows too
    assert rollups.state(j) == rollups.State(j.readings.max_id(), True, 0)
    same(tier(j, "rollup_5m"), brute(everything, 300))
    same(tier(j, "rollup_1h"), brute(everything, 3600))
    same_chart(chart(j, 40, T0, T0 + 4 * 86400), whole_hours)  # the same chart from the hourly tier
    for sensor, step, rows in whole_hours:
        want = brute([r for r in everything if r.sensor == sensor], step)
        assert [(ts, lo, hi, n) for ts, lo, _, hi, n in rows] == sorted(
            (b / 1000, lo, hi, n) for (_, b), (n, lo, _, hi, _) in want.items() if n)


def test_a_new_journal_needs_no_hourly_backfill(journal: Journal) -> None:
    assert journal.read("SELECT name, value FROM rollup_state ORDER BY name") == [("deleted_before", 0), ("raw", 0)]
    assert rollups.state(journal).widths() == (3600, 300)
