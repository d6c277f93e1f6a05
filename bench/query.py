"""Scenario 6: history of one sensor, one year of 1-minute readings, through Journal.query and the API.

main has no downsampling endpoint yet (it is on feat-reports), so this measures what main
serves: every raw reading of the year from `Journal.query`, and `GET /api/v1/readings`, which
returns at most 100,000 readings per request (about 69 days of 1-minute data).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import httpx

from bench.common import Result, app_config, check
from daemon.journal import Journal
from daemon.model import Quantity, Reading
from daemon.runtime import Daemon

YEAR_MIN = 365 * 24 * 60
T0 = 1_730_000_000.0


def build(path: Path, minutes: int, others: int = 3) -> None:
    """One year of 1-minute temperature for s0, and the same for `others` neighbours (so the index is shared)."""
    j = Journal(path)
    j.append([Reading("bench", "z1", f"s{k}", Quantity.TEMPERATURE, 5.0, T0 - 60) for k in range(others + 1)])
    sids = [j._series[("bench", "z1", f"s{k}", "temperature")] for k in range(others + 1)]
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
    d._server.should_exit = True
    await asyncio.sleep(0.3)
    for t in d._tasks:
        t.cancel()
    await asyncio.gather(*d._tasks, return_exceptions=True)
    d.journal.close()
    return statistics.median(times), n, statistics.median(chart), points


def run(tmp: Path, minutes: int = YEAR_MIN) -> list[Result]:
    db = tmp / "year.db"
    build(db, minutes)
    j = Journal(db)
    q_s, n = _timed(lambda: j.query(sensor="s0", quantity="temperature", start=T0, end=T0 + 60 * minutes,
                                    limit=10 * minutes))
    j.close()
    api_s, api_n, chart_s, chart_n = asyncio.run(_api(tmp, db, minutes))
    ms = q_s * 1000
    chart_ms = chart_s * 1000
    return [Result(
        key="history", title="6. history chart of one sensor, one year of 1-min data (GET /api/v1/history)",
        value=chart_ms, unit="ms", target="<= 200", met=check(chart_ms, "<= 200"),
        raw={"points_returned": chart_n, "history_ms": round(chart_ms, 1), "readings_in_range": n},
        notes=["server-side buckets (min/mean/max per step, SQL GROUP BY), at most ~1000 points per series"],
    ), Result(
        key="query", title="6. history of one sensor, one year of 1-min data (Journal.query, raw rows)",
        value=ms, unit="ms", target="<= 200", met=check(ms, "<= 200"),
        raw={"readings_returned": n, "journal_query_ms": round(ms, 1), "api_readings_returned": api_n,
             "api_ms": round(api_s * 1000, 1), "api_limit": 100_000, "sensors_in_journal": 4},
        notes=["every raw reading of the year: what an export asks, not what the chart asks"],
    )]
