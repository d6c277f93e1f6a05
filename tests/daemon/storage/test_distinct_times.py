"""Two rows of one series never share a millisecond; device times are kept; exact repeats are stored once."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.ports.model import Flag, Quality, Quantity, Reading
from daemon.storage.journal import Journal
from daemon.storage.readings import STEP_BACK_MS

T0 = 1_700_000_000.0


def rd(value: float, ts: float, sensor: str = "s1", flags: Flag = Flag.RECEIVED,
       q: Quantity = Quantity.TEMPERATURE) -> Reading:
    return Reading("site", "z1", sensor, q, value, ts, Quality.GOOD, "", None, flags)


def series_times(j: Journal) -> list[tuple[int, int]]:
    return [(row[0], row[1]) for row in j.read("SELECT series, ts_ms FROM readings ORDER BY id")]


def test_a_burst_stamped_on_arrival_keeps_every_reading_in_order(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    burst = [rd(float(i), T0, sensor=f"s{i % 4}") for i in range(2_000)]
    stored = j.readings.append(burst[:700]) + j.readings.append(burst[700:])
    assert len(stored) == 2_000
    pairs = series_times(j)
    assert len(set(pairs)) == 2_000  # one per series and millisecond: InfluxDB keeps them all
    for sensor in ("s0", "s1", "s2", "s3"):
        times = [r.ts for r in j.readings.query(sensor=sensor)]
        values = [r.value for r in j.readings.query(sensor=sensor)]
        assert times == sorted(times) and len(set(times)) == 500
        assert values == sorted(values)  # arrival order kept
    assert stored[-1].ts == T0 + 0.499  # 500 readings of s3 from T0 on, one millisecond apart
    assert all(r.flags is Flag.RECEIVED for r in j.readings.read_after(0, 10))


def test_the_last_time_survives_a_restart(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([rd(1.0, T0), rd(2.0, T0)])
    j.close()
    j = Journal(tmp_path / "j.db")
    j.readings.append([rd(3.0, T0)])
    assert [r.ts for r in j.readings.query()] == [T0, T0 + 0.001, T0 + 0.002]


def test_other_series_and_quantities_do_not_move_each_other(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([rd(1.0, T0), rd(50.0, T0, q=Quantity.HUMIDITY), rd(1.0, T0, sensor="s2")])
    assert {r.ts for r in j.readings.query()} == {T0}


def test_a_device_time_is_kept_and_an_exact_repeat_stored_once(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    first = [rd(float(i), T0 + i, flags=Flag.NONE) for i in range(10)]
    j.readings.append(first)
    again = j.readings.append([*first[3:7], rd(99.0, T0 + 10, flags=Flag.NONE)])  # a redelivery, then a new one
    assert [r.value for r in again] == [99.0]
    assert j.readings.count() == 11
    assert [r.ts for r in j.readings.query()] == [T0 + i for i in range(11)]


def test_a_device_time_repeated_with_another_value_moves_one_millisecond(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([rd(5.0, T0, flags=Flag.NONE)])
    j.readings.append([rd(6.0, T0, flags=Flag.NONE)])
    assert [(r.value, r.ts) for r in j.readings.query()] == [(5.0, T0), (6.0, T0 + 0.001)]


def test_a_clock_stepped_back_keeps_its_times_without_collisions(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([rd(1.0, T0), rd(2.0, T0 + 3600)])
    back = T0 + 3600 - 2 * STEP_BACK_MS / 1000  # the clock stepped back two minutes
    j.readings.append([rd(3.0, back), rd(4.0, T0)])  # 4.0 lands on a stored millisecond: moved by one
    assert [(r.value, r.ts) for r in j.readings.query()] == [(1.0, T0), (4.0, T0 + 0.001), (3.0, back),
                                                               (2.0, T0 + 3600)]
    warned = [r.getMessage() for r in caplog.records if "stepped back" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("sensor s1 (temperature): arrival time")


def test_replayed_readings_keep_their_flag_and_leave_the_fast_path(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([rd(1.0, T0), rd(2.0, T0 + 1, flags=Flag.RECEIVED | Flag.REPLAYED),
                       rd(3.0, T0 + 2, flags=Flag.NONE)])
    assert [r.flags for r in j.readings.read_after(0, 10)] == [Flag.RECEIVED, Flag.RECEIVED | Flag.REPLAYED,
                                                                Flag.NONE]
    _, values = j.readings.read_values_after(0, 10)
    assert [v for _, _, v in values] == [1.0, None, 3.0]  # None: a sink encodes that row itself (replayed=true)
