"""Scenario 2: drain a journal backlog through the influxdb1 sink vs a raw line-protocol POST.

The backlog is written straight into a fresh journal (not timed). The baseline POSTs the very
same request bodies, made beforehand by the sink itself (`prepare`: same batches, same lines, same
gzip level), one request after the other, to another database of the same InfluxDB 1.6.7. Ours
is the real Forwarder with the influxdb1 sink at its defaults (batch 5000, gzip on, two batches
on the wire): journal read, line making, gzip, POST, cursor commit. Baseline and ours alternate
for `rounds` rounds, each into a fresh database; the figure is total raw time / total ours time.

Reported beside it: the baseline with two requests on the wire (as ours), and with uncompressed
bodies (the server's cheapest case).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

from bench.common import InfluxD, Result, check
from daemon.forwarding.forwarder import Forwarder
from daemon.ports.clock import Clock
from daemon.ports.model import Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from drivers.sinks.influxdb.schema import InfluxDB1Config
from drivers.sinks.influxdb.v1 import InfluxDB1Sink

SENSORS = 100
T0 = 1_763_000_000.0  # Nov 2025: inside InfluxDB's default (infinite) retention


def build_backlog(path: Path, n: int) -> Journal:
    """n readings of SENSORS sensors, one per sensor per 10 s, written in 20k-row transactions."""
    j = Journal(path)
    first = [Reading("bench", f"z{i % 10}", f"s{i}", Quantity.TEMPERATURE, 5.0, T0) for i in range(SENSORS)]
    j.readings.append(first)
    sids = [j.readings._series[("bench", f"z{i % 10}", f"s{i}", "temperature")] for i in range(SENSORS)]
    step = 20_000
    for start in range(SENSORS, n, step):
        rows = [(round((T0 + 10 * (i // SENSORS)) * 1000), sids[i % SENSORS], 4.0 + (i % 97) / 25, 0, None)
                for i in range(start, min(n, start + step))]
        with j.transaction() as db:
            db.executemany("INSERT INTO readings (ts_ms, series, value, quality, note) VALUES (?, ?, ?, ?, ?)", rows)
    return j


def raw_post(influx: InfluxD, db: str, bodies: list[bytes], gzipped: bool = False, in_flight: int = 1) -> float:
    http = urllib3.PoolManager(num_pools=1, maxsize=in_flight, retries=False, timeout=urllib3.Timeout(total=60))
    url = f"{influx.url}/write?db={db}&precision=ms"
    headers = {"Content-Type": "text/plain; charset=utf-8", **({"Content-Encoding": "gzip"} if gzipped else {})}

    def post(body: bytes) -> None:
        resp = http.request("POST", url, body=body, headers=headers)
        if resp.status != 204:
            raise RuntimeError(f"raw POST: HTTP {resp.status} {resp.data[:200]!r}")

    t0 = time.perf_counter()
    if in_flight == 1:
        for body in bodies:
            post(body)
    else:
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(post, bodies))
    return time.perf_counter() - t0


def bodies_of(j: Journal, gzip: bool) -> list[bytes]:
    """Every request body of the backlog, as the sink makes them."""
    cfg = InfluxDB1Config.model_validate({"id": "x", "type": "influxdb1", "url": "http://x", "database": "x",
                                          "gzip": gzip})
    sink, out, after = InfluxDB1Sink(cfg, {}), [], 0
    while (batch := sink.prepare(j.readings, after, cfg.batch_size)) is not None:
        assert isinstance(batch.payload, bytes)
        out.append(batch.payload)
        after = batch.last
    return out


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


def run(tmp: Path, influx: InfluxD, n: int = 1_000_000, gzip: bool = True, rounds: int = 2) -> list[Result]:
    t_build = time.perf_counter()
    j = build_backlog(tmp / "backlog.db", n)
    build_s = time.perf_counter() - t_build
    max_id = j.readings.max_id()
    bodies, plain = bodies_of(j, gzip), bodies_of(j, False)
    stamp = time.monotonic_ns()
    times: dict[str, list[float]] = {"raw": [], "raw2": [], "ours": []}
    cpu: dict[str, float] = {"raw": 0.0, "ours": 0.0}
    got: dict[str, int] = {}

    def fresh(name: str) -> str:
        db = f"{name}_{stamp}"
        influx.create_database(db)
        return db

    def done(name: str, db: str) -> None:
        got[name] = count(influx, db)
        influx.query(f'DROP DATABASE "{db}"')

    raw_plain_s = raw_post(influx, db := fresh("plain"), plain)
    done("plain", db)
    for r in range(rounds):
        c0 = time.process_time()
        times["raw"].append(raw_post(influx, db := fresh(f"raw{r}"), bodies, gzipped=gzip))
        cpu["raw"] += time.process_time() - c0
        done("raw", db)
        times["raw2"].append(raw_post(influx, db := fresh(f"raw2_{r}"), bodies, gzipped=gzip, in_flight=2))
        done("raw2", db)
        cfg = InfluxDB1Config.model_validate({"id": f"bench{r}", "type": "influxdb1", "url": influx.url,
                                              "database": fresh(f"ours{r}"), "gzip": gzip})
        c0 = time.process_time()
        times["ours"].append(asyncio.run(forward(j, InfluxDB1Sink(cfg, {}), max_id)))
        cpu["ours"] += time.process_time() - c0
        done("ours", cfg.database)
    j.close()
    raw_s, raw2_s, ours_s = (sum(times[k]) for k in ("raw", "raw2", "ours"))
    ratio = raw_s / ours_s
    return [Result(
        key="drain", title=f"2. backlog drain, influxdb1 sink vs raw POST of the same bodies ({n:,} readings)",
        value=ratio, unit="x",
        target=">= 0.7", met=check(ratio, ">= 0.7"),
        raw={"readings": n, "batch": InfluxDB1Config.model_fields["batch_size"].default, "gzip": gzip, "rounds": rounds,
             "ours_readings_per_s": round(rounds * max_id / ours_s),
             "raw_post_gzip_readings_per_s": round(rounds * max_id / raw_s),
             "ratio_per_round": [round(a / b, 3) for a, b in zip(times["raw"], times["ours"], strict=True)],
             "raw_post_2_in_flight_readings_per_s": round(rounds * max_id / raw2_s),
             "ratio_vs_2_in_flight_post": round(raw2_s / ours_s, 3),
             "raw_post_plain_readings_per_s": round(max_id / raw_plain_s),
             "ratio_vs_plain_post": round(raw_plain_s * rounds / ours_s, 3),
             "ours_s": [round(t, 2) for t in times["ours"]], "raw_gzip_s": [round(t, 2) for t in times["raw"]],
             "raw_2_in_flight_s": [round(t, 2) for t in times["raw2"]], "raw_plain_s": round(raw_plain_s, 2),
             "body_bytes_per_reading": round(sum(map(len, bodies)) / max_id, 2),
             "ours_cpu_us_per_reading": round(1e6 * cpu["ours"] / (rounds * max_id), 1),
             "raw_post_cpu_us_per_reading": round(1e6 * cpu["raw"] / (rounds * max_id), 1),
             "points_in_influx_ours": got["ours"], "points_in_influx_raw": got["raw"],
             "backlog_build_s": round(build_s, 1)},
    )]
