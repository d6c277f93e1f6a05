"""Scenario 6: history of one sensor, one year of 1-minute readings, and what keeping rollups costs ingest.

- the chart: `GET /api/v1/history` over the year (<= 1000 buckets per series; 12-hour steps, read from
  the hourly rollup tier, daemon/rollups.py), beside `raw_grouping`, which groups the 525,600 raw rows
  as history() did before the tiers;
- every raw reading of the year from `Journal.query`, and `GET /api/v1/readings`, which returns at most
  100,000 readings per request (about 69 days of 1-minute data): what an export asks;
- the backfill: rolling the year's rows into the tiers, as journal v6 does for a box with months of data;
- `Journal.append` throughput and bytes per reading with no rollups, with the Roller's rolls (one per
  5 minutes of readings), and with the alternative not taken: an UPSERT per touched bucket in each append.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.common import Result, app_config, check
from daemon.app.runtime import Daemon
from daemon.ports.model import Quantity, Reading
from daemon.reports import history
from daemon.storage import rollups
from daemon.storage.journal import Journal
from daemon.storage.readings import Readings

YEAR_MIN = 365 * 24 * 60
T0 = 1_730_000_000.0


def build(path: Path, minutes: int, others: int = 3) -> None:
    """One year of 1-minute temperature for s0, and the same for `others` neighbours (so the index is shared)."""
    j = Journal(path)
    j.readings.append([Reading("bench", "z1", f"s{k}", Quantity.TEMPERATURE, 5.0, T0 - 60) for k in range(others + 1)])
    sids = [j.readings._series[("bench", "z1", f"s{k}", "temperature")] for k in range(others + 1)]
    step = 50_000
    total = minutes * (others + 1)
    for start in range(0, total, step):
        rows = [(round((T0 + 60 * (i // len(sids))) * 1000), sids[i % len(sids)], 5.0 + (i % 30) / 10, 0, None)
                for i in range(start, min(total, start + step))]
        with j.transaction() as db:
            db.executemany("INSERT INTO readings (ts_ms, series, value, quality, note) VALUES (?, ?, ?, ?, ?)", rows)
    j.close()


def _timed(fn: object, repeat: int = 3) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = len(fn())  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), n


async def _api(tmp: Path, db: Path, minutes: int) -> tuple[float, int, float, int]:
    doc = {"site": {"id": "bench", "name": "基准"}, "storage": {"journal": str(db)},
           "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin"}],
           "sensors": [{"id": f"s{k}", "zone": "z1", "type": "simulated", "setpoint": 6} for k in range(10)],
           "api": {"enabled": True, "port": 0}}
    d = Daemon(app_config(tmp, doc))
    # only the API is started: no drivers, so nothing is added to the year of history
    d._loop = asyncio.get_running_loop()
    await d._start_api()
    times, n = [], 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=60) as http:
        for _ in range(3):
            t0 = time.perf_counter()
            r = await http.get("/api/v1/readings", params={"sensor": "s0", "quantity": "temperature",
                                                            "start": T0, "end": T0 + 60 * minutes,
                                                            "limit": 100_000})
            n = r.json()["count"]
            times.append(time.perf_counter() - t0)
        chart, points = [], 0
        for _ in range(3):  # what the history chart asks: server-side min/mean/max buckets (<= 1000 points)
            t0 = time.perf_counter()
            r = await http.get("/api/v1/history", params={"sensor": "s0", "quantity": "temperature",
                                                           "start": T0, "end": T0 + 60 * minutes})
            body = r.json()
            chart.append(time.perf_counter() - t0)
            points = sum(len(s["rows"]) for s in body["series"])
    await d._server.stop()
    for t in d._tasks:
        t.cancel()
    await asyncio.gather(*d._tasks, return_exceptions=True)
    d.journal.close()
    return statistics.median(times), n, statistics.median(chart), points


def raw_grouping(j: Journal, sid: int, start: float, end: float, step: int) -> list[tuple[float, ...]]:
    """The buckets as history() made them before the tiers: a GROUP BY over every raw reading in range."""
    rows = j.read("SELECT ts_ms / :step AS bk, MIN(value), AVG(value), MAX(value), COUNT(*) FROM readings "
                  "WHERE series = :sid AND ts_ms >= :a AND ts_ms < :b AND quality = 0 AND value IS NOT NULL "
                  "GROUP BY bk ORDER BY bk",
                  {"sid": sid, "a": round(start * 1000), "b": round(end * 1000), "step": step * 1000})
    return [(bk * step, lo, round(mean, 3), hi, n) for bk, lo, mean, hi, n in rows]


class _UpsertReadings(Readings):
    """The alternative to the Roller, for comparison only: each append also UPSERTs, in its own
    transaction, one row per (series, bucket) it touches in both tiers, aggregated in Python."""

    def append(self, readings: Sequence[Reading]) -> list[Reading]:
        agg: dict[tuple[str, int, int], list[Any]] = {}
        with self._db.transaction() as db:
            for r in readings:
                sid, ts = self._series_id(db, r), round(r.ts * 1000)
                db.execute("INSERT INTO readings (ts_ms, series, value, quality, note) VALUES (?, ?, ?, ?, ?)",
                           (ts, sid, r.value, int(r.quality), r.note or None))
                for table, w in (("rollup_5m", 300_000), ("rollup_1h", 3_600_000)):
                    a = agg.setdefault((table, sid, ts // w * w), [0, None, 0.0, None, 0])
                    if r.quality == 0 and r.value is not None:
                        a[0] += 1
                        a[1] = r.value if a[1] is None else min(a[1], r.value)
                        a[2] += r.value
                        a[3] = r.value if a[3] is None else max(a[3], r.value)
                    else:
                        a[4] += 1
            for (table, sid, b), (n, lo, sm, hi, faults) in agg.items():
                db.execute(_UPSERT.format(table=table), (sid, b, n, lo, sm / n if n else None, hi, faults))
        return list(readings)


_UPSERT = """INSERT INTO {table} (series, bucket_ms, n, min, mean, max, faults) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (series, bucket_ms) DO UPDATE SET
    mean = CASE WHEN n + excluded.n > 0
                THEN (COALESCE(mean, 0) * n + COALESCE(excluded.mean, 0) * excluded.n) / (n + excluded.n) END,
    min = MIN(COALESCE(min, excluded.min), COALESCE(excluded.min, min)),
    max = MAX(COALESCE(max, excluded.max), COALESCE(excluded.max, max)),
    n = n + excluded.n, faults = faults + excluded.faults"""


def _write_bytes() -> int:
    with open("/proc/self/io", encoding="utf-8") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("write_bytes"))


def ingest_cost(tmp: Path, sensors: int = 100, minutes: int = 600, batch: int = 10) -> dict[str, Any]:
    """Journal.append of `sensors` x `minutes` 1-minute readings in batches of `batch`, three ways, in turn."""
    out: dict[str, Any] = {"readings": sensors * minutes, "batch": batch}
    readings = [Reading("bench", "z1", f"s{k}", Quantity.TEMPERATURE, 5.0 + (k + m) % 30 / 10, T0 + 60 * m)
                for m in range(minutes) for k in range(sensors)]
    for mode in ("raw", "roller", "upsert"):
        path = tmp / f"append-{mode}.db"
        j = Journal(path)
        if mode == "upsert":
            j.readings = _UpsertReadings(j.db)
        j.readings.append(readings[:1])  # the series row exists before the clock starts
        per_roll = sensors * round(rollups.ROLL_INTERVAL / 60)  # what the Roller finds at each pass
        w0, c0 = _write_bytes(), time.process_time()
        append_s = roll_s = 0.0
        for i in range(1, len(readings), batch):
            t0 = time.perf_counter()
            j.readings.append(readings[i:i + batch])
            t1 = time.perf_counter()
            if mode == "roller" and i // per_roll != (i + batch) // per_roll:
                rollups.catch_up(j)  # in the daemon: the Roller's thread, its own transaction
            append_s, roll_s = append_s + t1 - t0, roll_s + time.perf_counter() - t1
        cpu = time.process_time() - c0
        j.close()  # folds the WAL in
        n = len(readings) - 1
        out[mode] = {"append_readings_per_s": round(n / append_s), "roll_us_per_reading": round(1e6 * roll_s / n, 1),
                     "cpu_us_per_reading": round(1e6 * cpu / n, 1),
                     "file_bytes_per_reading": round(path.stat().st_size / len(readings), 1),
                     "written_bytes_per_reading": round((_write_bytes() - w0) / n)}
    return out


def run(tmp: Path, minutes: int = YEAR_MIN, append_minutes: int = 600) -> list[Result]:
    db = tmp / "year.db"
    build(db, minutes)
    j = Journal(db)
    t0 = time.perf_counter()
    rolled = rollups.catch_up(j)  # what v6 does after the upgrade of a box with this much data
    backfill_s = time.perf_counter() - t0
    q_s, n = _timed(lambda: j.readings.query(sensor="s0", quantity="temperature", start=T0, end=T0 + 60 * minutes,
                                    limit=10 * minutes))
    (sid,) = j.readings.series_ids(sensor="s0", quantity="temperature")
    step = history.choose_step(60 * minutes)
    tiers_s, _ = _timed(lambda: history.bucket_rows(j, sid, T0, T0 + 60 * minutes, step))
    raw_s, _ = _timed(lambda: raw_grouping(j, sid, T0, T0 + 60 * minutes, step))
    pairs = list(zip(history.bucket_rows(j, sid, T0, T0 + 60 * minutes, step),
                     raw_grouping(j, sid, T0, T0 + 60 * minutes, step), strict=True))
    same = all(a[:2] + a[3:] == b[:2] + b[3:] and abs(a[2] - b[2]) <= 0.0011 for a, b in pairs)
    j.close()
    api_s, api_n, chart_s, chart_n = asyncio.run(_api(tmp, db, minutes))
    cost = ingest_cost(tmp, minutes=append_minutes)
    ms = q_s * 1000
    chart_ms = chart_s * 1000
    return [Result(
        key="history", title="6. history chart of one sensor, one year of 1-min data (GET /api/v1/history)",
        value=chart_ms, unit="ms", target="<= 200", met=check(chart_ms, "<= 200"),
        raw={"points_returned": chart_n, "history_ms": round(chart_ms, 1), "readings_in_range": n,
             "step_s": step, "history_fn_tiers_ms": round(tiers_s * 1000, 1),
             "history_fn_raw_grouping_ms": round(raw_s * 1000, 1), "same_buckets": same,
             "backfill_s": round(backfill_s, 1), "backfill_ids": rolled},
        notes=["server-side buckets (min/mean/max per step) read from the hourly rollup tier, with raw readings "
               "at the edges and the not-yet-rolled tail; `history_fn_raw_grouping_ms` is the same buckets "
               "grouped from the raw rows (history() before the tiers), in the same run",
               "backfill: rolling every row of the journal (4 series x a year) into both tiers, as the first "
               "rolls after the v6 upgrade do"],
    ), Result(
        key="query", title="6. every raw reading of a year for one sensor (Journal.query; export, not the chart)",
        value=ms, unit="ms", target="n/a", met=None,
        raw={"readings_returned": n, "journal_query_ms": round(ms, 1), "api_readings_returned": api_n,
             "api_ms": round(api_s * 1000, 1), "api_limit": 100_000, "sensors_in_journal": 4},
        notes=["every raw reading of the year: what an export asks, not what the chart asks"],
    ), Result(
        key="rollup_cost", title="6. journal CPU per reading with the Roller's rollups vs without",
        value=cost["roller"]["cpu_us_per_reading"] / cost["raw"]["cpu_us_per_reading"], unit="x", target="n/a",
        met=None,
        raw=cost,
        notes=[f"{cost['readings']:,} 1-minute readings of 100 sensors, batches of {cost['batch']}; `roller`: a "
               "roll per 5 minutes of readings (the Roller's interval, in data time); `upsert`: the "
               "alternative, an UPSERT per touched (series, bucket) and tier inside each append",
               "append_readings_per_s: time inside Journal.append only; roll_us_per_reading: time inside the rolls; "
               "cpu: the whole loop. File bytes = journal after the WAL is folded in; written = bytes this "
               "process sent to the disk (WAL, checkpoints)"],
    )]
