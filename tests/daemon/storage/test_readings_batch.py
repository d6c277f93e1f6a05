"""A batch goes in by many rows per INSERT: each reading handed back carries the id and time of its own row,
and a look-up in the middle of a batch (an out-of-order device time) sees the rows inserted before it."""

from __future__ import annotations

from pathlib import Path

from daemon.ports.model import Flag, Quality, Quantity, Reading
from daemon.storage.journal import Journal
from daemon.storage.readings import INSERT_ROWS

T0 = 1_700_000_000.0


def rd(value: float, ts: float, sensor: str = "s1", flags: Flag = Flag.RECEIVED, note: str = "") -> Reading:
    return Reading("site", "z1", sensor, Quantity.TEMPERATURE, value, ts, Quality.GOOD, note, None, flags)


def rows_by_id(j: Journal) -> dict[int, tuple[int, float, str | None, int | None]]:
    return {row[0]: (row[1], row[2], row[3], row[4])
            for row in j.read("SELECT id, ts_ms, value, note, flags FROM readings_log")}


def test_every_stored_reading_carries_the_id_and_time_of_its_own_row(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    first = j.readings.append([rd(0.5, T0)])
    n = 2 * INSERT_ROWS + 7  # two full statements and a short one
    batch = [rd(float(i), T0 + 1, sensor=f"s{i % 3}", note=f"n{i}", flags=Flag.RECEIVED if i % 2 else Flag.NONE)
             for i in range(n)]
    stored = j.readings.append(batch)
    rows = rows_by_id(j)
    assert len(stored) == n == len(rows) - 1
    assert [r.id for r in first + stored] == sorted(rows)
    for r in stored:
        assert r.id is not None
        ts_ms, value, note, _flags = rows[r.id]
        assert (ts_ms, value, note) == (round(r.ts * 1000), r.value, r.note)


def test_an_out_of_order_device_time_in_a_batch_sees_the_rows_before_it(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([rd(1.0, T0 + 100, flags=Flag.NONE)])  # the series is ahead of what follows
    # T0 + 5 twice with other values, in one batch: the second must find the first's row and move 1 ms
    stored = j.readings.append([rd(2.0, T0 + 5, flags=Flag.NONE), rd(3.0, T0 + 5, flags=Flag.NONE),
                                rd(2.0, T0 + 5, flags=Flag.NONE)])  # then an exact repeat of the first: not stored
    assert [(round(r.ts * 1000) - round(T0 * 1000), r.value) for r in stored] == [(5000, 2.0), (5001, 3.0)]
    times = [row[0] for row in j.read("SELECT ts_ms FROM readings_log")]
    assert len(times) == len(set(times)) == 3
