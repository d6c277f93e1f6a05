"""Scenario: a broker's backlog replayed in one burst, counted where it ends up (distinct InfluxDB points).

A persistent session holds `n` QoS 1 messages of `sensors` sensors that send no time of their own
(Zigbee2MQTT, Shelly, generic JSON); the real Daemon starts, drains it into the journal and forwards
it to InfluxDB 1.6.7. The figure is the number of distinct points InfluxDB holds afterwards (it keeps
one per series and timestamp), against the messages published; the journal's distinct (series, time)
pairs and its `replayed` flags are counted beside it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from bench.common import BenchBroker, InfluxD, Result, app_config
from bench.ingest import TOPIC, daemon_config, preload, queued_session
from daemon.app.runtime import Daemon


def influx_points(influx: InfluxD, db: str) -> int:
    """Distinct points of `readings`, summed over its series (a count per series, not rows sent)."""
    series = influx.query('SELECT COUNT("temperature") FROM "readings" GROUP BY *', db)
    return sum(int(s["values"][0][1]) for s in series)


async def _drain(doc: dict[str, object], tmp: Path, n: int) -> dict[str, float]:
    d = Daemon(app_config(tmp, doc))
    t0 = time.perf_counter()
    await d.start()
    deadline = t0 + 600
    while time.perf_counter() < deadline:
        stored = d.journal.readings.max_id()
        if stored >= n and d.journal.cursors.get("sink:influx") >= stored:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    rows = d.journal.read("SELECT COUNT(*), COUNT(DISTINCT series * 10000000000000 + ts_ms), "
                          "SUM(COALESCE(flags, 0) & 1) FROM readings")[0]
    await d.stop()
    return {"rows": rows[0], "distinct": rows[1], "replayed": rows[2] or 0, "seconds": elapsed}


def run(tmp: Path, influx: InfluxD, n: int = 50_000, sensors: int = 200) -> list[Result]:
    logging.getLogger("coldchain").setLevel(logging.WARNING)
    db = f"burst{time.monotonic_ns()}"
    influx.query(f'CREATE DATABASE "{db}"')
    broker = BenchBroker(tmp / "mosq")
    broker.start()
    try:
        client_id = f"bench-burst-{time.monotonic_ns()}"
        topics = [TOPIC.format(i) for i in range(sensors)]
        queued_session(broker.port, client_id, topics)
        preload(broker.port, topics, n)
        doc = daemon_config(tmp, broker.port, sensors, client_id)
        doc["sinks"] = [{"id": "influx", "type": "influxdb1", "url": influx.url, "database": db}]
        got = asyncio.run(_drain(doc, tmp, n))
    finally:
        broker.stop()
    points = influx_points(influx, db)
    return [Result(
        key="burst", title=f"burst: {n:,} queued messages of {sensors} sensors without a device time, replayed at "
                           "once: distinct points in InfluxDB",
        value=points, unit="points", target=f"= {n}", met=points == n,
        raw={"published": n, "journal_rows": got["rows"], "journal_distinct_series_ms": got["distinct"],
             "journal_flagged_replayed": got["replayed"], "influx_points": points,
             "drain_s": round(got["seconds"], 1)},
        notes=["before distinct times (session 4), the same burst kept 793 of 50,000 points (issue 13)"])]
