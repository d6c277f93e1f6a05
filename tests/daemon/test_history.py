"""history() over the rollup tiers, the raw edges and the unrolled tail equals a brute-force pass over
the readings, for random data written out of order, with faults, rolled (or not) at random moments,
and after retention deleted the old raw rows."""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daemon.ports.clock import ManualClock
from daemon.ports.model import Quality, Quantity, Reading
from daemon.ports.stats import Stats
from daemon.reports import history
from daemon.storage import rollups
from daemon.storage.journal import Journal
from daemon.storage.retention import Retention

T0 = 1_763_568_000.0  # on an hour boundary
DAYS = 3
Row = tuple[float, float, float, float, int]


def dataset(seed: int, n: int) -> list[Reading]:
    """s1 and s2 at random distinct minutes (jittered) over DAYS days, ~1 in 8 a fault, shuffled."""
    rng = random.Random(seed)
    out = []
    for sensor in ("s1", "s2"):
        for minute in rng.sample(range(DAYS * 1440), n):
            q = Quality.FAULT if rng.random() < 0.12 else Quality.GOOD
            value = None if q != Quality.GOOD or rng.random() < 0.03 else round(rng.uniform(-3, 14), 1)
            out.append(Reading("c1", "z1", sensor, Quantity.TEMPERATURE, value, T0 + minute * 60 + rng.uniform(0, 59),
                               q, "" if q == Quality.GOOD else "fault"))
    rng.shuffle(out)  # a gateway's buffer arrives after newer readings
    return out


def write(journal: Journal, readings: Sequence[Reading], seed: int) -> None:
    """Append in random batches; roll after some of them, a random number of ids at a time."""
    rng = random.Random(seed)
    i = 0
    while i < len(readings):
        k = rng.randint(1, 80)
        journal.readings.append(readings[i:i + k])
        i += k
        if rng.random() < 0.4:
            rollups.roll(journal, rng.choice([1, 7, 60, 10_000]))


def brute(readings: Sequence[Reading], start: float, end: float, step: int, offset_s: int) -> list[Row]:
    a, b = round(start * 1000), round(end * 1000)
    buckets: dict[int, list[float]] = defaultdict(list)
    for r in readings:
        ts = round(r.ts * 1000)
        if r.sensor == "s1" and r.quality == Quality.GOOD and r.value is not None and a <= ts < b:
            buckets[(ts + offset_s * 1000) // (step * 1000)].append(r.value)
    return [(k * step - offset_s, min(v), sum(v) / len(v), max(v), len(v)) for k, v in sorted(buckets.items())]


def raw(readings: Sequence[Reading], start: float, end: float) -> list[Row]:
    a, b = round(start * 1000), round(end * 1000)
    return sorted((round(r.ts * 1000) / 1000, r.value, r.value, r.value, 1) for r in readings
                  if r.sensor == "s1" and r.quality == Quality.GOOD and r.value is not None
                  and a <= round(r.ts * 1000) < b)  # type: ignore[misc]


def same(got: list[Row], want: list[Row]) -> None:
    """Exact but for the mean's last decimal: sums taken in another order may round it the other way."""
    assert [(r[0], r[1], r[3], r[4]) for r in got] == [(r[0], r[1], r[3], r[4]) for r in want]
    assert [r[2] for r in got] == pytest.approx([r[2] for r in want], abs=0.0011)


def chart(journal: Journal, start: float, end: float, max_points: int, offset_s: int) -> history.Series:
    (s,) = history.history(journal, start=start, end=end, sensor="s1", quantity="temperature",
                           max_points=max_points, offset_s=offset_s)
    return s


OFFSETS = st.sampled_from([0, 8 * 3600, 5 * 3600 + 1800, 5 * 3600 + 2700, -5 * 3600, 1800])
POINTS = st.sampled_from([10, 13, 24, 50, 300, 1000])
HEALTH = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HEALTH
@given(seed=st.integers(0, 2**32), n=st.integers(1, 400), start=st.floats(-3600, DAYS * 86400),
       span=st.floats(1, DAYS * 86400 + 7200), max_points=POINTS, offset_s=OFFSETS)
def test_history_equals_brute_force(seed: int, n: int, start: float, span: float, max_points: int,
                                    offset_s: int) -> None:
    readings = dataset(seed, n)
    with tempfile.TemporaryDirectory() as tmp:
        j = Journal(Path(tmp) / "j.db")
        write(j, readings, seed)
        a, b = T0 + start, T0 + start + span
        s = chart(j, a, b, max_points, offset_s)
        if s.step == 0:
            want = raw(readings, a, b)
            same(s.rows, want[:max_points])
        else:
            same(s.rows, brute(readings, a, b, s.step, offset_s))
        j.close()


@HEALTH
@given(seed=st.integers(0, 2**32), n=st.integers(1, 400), start5=st.integers(-12, DAYS * 288),
       span5=st.integers(3, DAYS * 288 + 24), max_points=POINTS, offset_s=OFFSETS,
       keep_days=st.floats(0.5, DAYS))
def test_history_is_the_same_after_retention_deleted_raw_rows(seed: int, n: int, start5: int, span5: int,
                                                              max_points: int, offset_s: int,
                                                              keep_days: float) -> None:
    """Ranges on 5-minute boundaries, steps of 5 minutes and more: only rollups back the deleted part."""
    readings = dataset(seed, n)
    a, b = T0 + start5 * 300, T0 + (start5 + span5) * 300
    assume(history.choose_step(b - a, max_points) >= 300 and (b - a) / 60 > max_points)
    with tempfile.TemporaryDirectory() as tmp:
        j = Journal(Path(tmp) / "j.db")
        write(j, readings, seed)
        before = chart(j, a, b, max_points, offset_s)
        now = T0 + DAYS * 86400
        result = Retention(j, ManualClock(now), Stats(), raw_retention=keep_days * 86400,
                           rollup_retention=400 * 86400, cursors=[]).run_pass()
        assert j.readings.count() == 2 * n - result.deleted
        after = chart(j, a, b, max_points, offset_s)
        assert after.step == before.step
        same(after.rows, before.rows)
        same(after.rows, brute(readings, a, b, after.step, offset_s))
        j.close()


def test_a_fine_chart_of_deleted_readings_shows_their_5_minute_rows(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    old = [Reading("c1", "z1", "s1", Quantity.TEMPERATURE, float(v), T0 + 60 * v) for v in range(10)]
    j.readings.append([*old, Reading("c1", "z1", "s1", Quantity.TEMPERATURE, 1.0, T0 + 10 * 86400)])
    Retention(j, ManualClock(T0 + 10 * 86400), Stats(), raw_retention=86400, rollup_retention=400 * 86400,
              cursors=[]).run_pass()
    assert j.readings.count() == 1
    s = chart(j, T0, T0 + 3600, 30, 0)  # one hour at 30 points: 2-minute steps; the raw readings are gone
    assert s.step == 120 and s.rows == [(T0, 0.0, 2.0, 4.0, 5), (T0 + 240, 5.0, 7.0, 9.0, 5)]
    (s,) = history.history(j, start=T0, end=T0 + 3600, sensor="s1", max_points=1000)
    assert s.step == 0 and s.rows == [(T0, 0.0, 2.0, 4.0, 5), (T0 + 300, 5.0, 7.0, 9.0, 5)]


def test_a_year_is_read_from_the_hourly_tier() -> None:
    """The plan for a year: hourly rows in the middle, 5-minute rows and raw readings at the edges
    (the tail above the cursor is added to the tiers' part)."""
    t0, t1 = round(T0 * 1000), round((T0 + 365 * 86400) * 1000)  # both on hour boundaries
    a, b = t0 + 61_500, t1 - 600_250
    assert history._plan(a, b, (3600, 300)) == [
        (None, a, t0 + 300_000), (None, t1 - 900_000, b),
        ("rollup_5m", t0 + 300_000, t0 + 3_600_000), ("rollup_5m", t1 - 3_600_000, t1 - 900_000),
        ("rollup_1h", t0 + 3_600_000, t1 - 3_600_000)]
    assert history._plan(a, a + 200_000, (3600, 300)) == [(None, a, a + 200_000)]  # no whole bucket: raw only
