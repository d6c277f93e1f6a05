"""Scenario 2: drain a journal backlog through the influxdb1 sink vs a raw line-protocol POST.

The backlog is written straight into a fresh journal (not timed). The baseline POSTs the very
same lines, made, split into the same batches and gzipped (level 5, as the sink does) beforehand,
one request after the other, to another database of the same InfluxDB 1.6.7; a second baseline
POSTs them uncompressed (the server's fastest case), reported beside it. Ours is the real Forwarder with the
influxdb1 sink at its defaults (batch 5000, gzip on): journal read, line making, gzip, POST,
cursor commit.
"""

from __future__ import annotations

import asyncio
import gzip as gzip_mod
import time
from pathlib import Path

import urllib3

from bench.common import InfluxD, Result, check
from daemon.clock import Clock
from daemon.forwarder import Forwarder
from daemon.journal import Journal
from daemon.model import Quantity, Reading
from daemon.stats import Stats
from drivers.sinks.influxdb.points import encode
from drivers.sinks.influxdb.schema import InfluxDB1Config
from drivers.sinks.influxdb.v1 import InfluxDB1Sink

SENSORS = 100
T0 = 1_763_000_000.0  # Nov 2025: inside InfluxDB's default (infinite) retention


def build_backlog(path: Path, n: int) -> Journal:
    """n readings of SENSORS sensors, one per sensor per 10 s, written in 20k-row transactions."""
    j = Journal(path)
    first = [Reading("bench", f"z{i % 10}", f"s{i}", Quantity.TEMPERATURE, 5.0, T0) for i in range(SENSORS)]
    j.append(first)
    sids = [j._series[("bench", f"z{i % 10}", f"s{i}", "temperature")] for i in range(SENSORS)]
    step = 20_000
    for start in range(SENSORS, n, step):
        rows = [(round((T0 + 10 * (i // SENSORS)) * 1000), sids[i % SENSORS], 4.0 + (i % 97) / 25, 0, None)
                for i in range(start, min(n, start + step))]
        with j.transaction() as db:
            db.executemany("INSERT INTO readings (ts_ms, series, value, quality, note) VALUES (?, ?, ?, ?, ?)", rows)
    return j


def raw_post(influx: InfluxD, db: str, bodies: list[bytes], gzipped: bool = False) -> float:
    http = urllib3.PoolManager(num_pools=1, maxsize=1, retries=False, timeout=urllib3.Timeout(total=60))
    url = f"{influx.url}/write?db={db}&precision=ms"
    headers = {"Content-Type": "text/plain; charset=utf-8", **({"Content-Encoding": "gzip"} if gzipped else {})}
    t0 = time.perf_counter()
    for body in bodies:
        resp = http.request("POST", url, body=body, headers=headers)
        if resp.status != 204:
            raise RuntimeError(f"raw POST: HTTP {resp.status} {resp.data[:200]!r}")
    return time.perf_counter() - t0


async def forward(j: Journal, sink: InfluxDB1Sink, n_max: int) -> float:
    f = Forwarder(sink, j, Clock(), Stats())
    task = asyncio.create_task(f.run())
    t0 = time.perf_counter()
    while f.state.cursor < n_max and not task.done():
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    f.stop()
    await asyncio.wait_for(task, 30)
    await sink.close()
    return elapsed


def count(influx: InfluxD, db: str) -> int:
    series = influx.query('SELECT COUNT("temperature") FROM "readings"', db)
    return int(series[0]["values"][0][1]) if series else 0


def run(tmp: Path, influx: InfluxD, n: int = 1_000_000, gzip: bool = True) -> list[Result]:
    t_build = time.perf_counter()
    j = build_backlog(tmp / "backlog.db", n)
    build_s = time.perf_counter() - t_build
    max_id = j.max_id()
    batch = InfluxDB1Config.model_validate({"id": "x", "type": "influxdb1", "url": "http://x", "database": "x"})
    size = batch.batch_size
    bodies = []
    for last in range(0, max_id, size):
        bodies.append(encode("raw", j.read_after(last, size), {}))
    zipped = [gzip_mod.compress(b, compresslevel=5) for b in bodies]  # as the sink does (gzip: true)
    stamp = time.monotonic_ns()
    raw_db, rawz_db, our_db = f"raw_{stamp}", f"rawz_{stamp}", f"ours_{stamp}"
    for db in (raw_db, rawz_db, our_db):
        influx.create_database(db)
    c0 = time.process_time()
    raw_s = raw_post(influx, raw_db, bodies)
    c1 = time.process_time()
    rawz_s = raw_post(influx, rawz_db, zipped if gzip else bodies, gzipped=gzip)
    cfg = InfluxDB1Config.model_validate({"id": "bench", "type": "influxdb1", "url": influx.url, "database": our_db,
                                          "gzip": gzip})
    c2 = time.process_time()
    ours_s = asyncio.run(forward(j, InfluxDB1Sink(cfg, {}), max_id))
    c3 = time.process_time()
    j.close()
    got_raw, got_ours = count(influx, raw_db), count(influx, our_db)
    for db in (raw_db, rawz_db, our_db):
        influx.query(f'DROP DATABASE "{db}"')
    ratio = rawz_s / ours_s
    return [Result(
        key="drain", title=f"2. backlog drain, influxdb1 sink vs raw POST of the same bodies ({n:,} readings)",
        value=ratio, unit="x",
        target=">= 0.7", met=check(ratio, ">= 0.7"),
        raw={"readings": n, "batch": size, "gzip": gzip, "ours_readings_per_s": round(max_id / ours_s),
             "raw_post_gzip_readings_per_s": round(max_id / rawz_s),
             "raw_post_plain_readings_per_s": round(max_id / raw_s),
             "ratio_vs_plain_post": round(raw_s / ours_s, 3),
             "ours_s": round(ours_s, 2), "raw_gzip_s": round(rawz_s, 2), "raw_plain_s": round(raw_s, 2),
             "ours_cpu_us_per_reading": round(1e6 * (c3 - c2) / max_id, 1),
             "raw_post_cpu_us_per_reading": round(1e6 * (c1 - c0) / max_id, 1),
             "points_in_influx_ours": got_ours, "points_in_influx_raw": got_raw, "backlog_build_s": round(build_s, 1)},
    )]
