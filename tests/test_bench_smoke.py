"""The benchmark harness (bench/) at tiny sizes: every scenario runs against its real peers and
counts what it should. Counts only: timings belong to `make bench`, never to a test."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from bench import drain, fleet, ingest, memory, query
from bench.common import InfluxD
from tests.peers import influxd

__all__ = ["influxd"]
pytestmark = pytest.mark.peer


def test_ingest_stores_every_message(tmp_path: Path) -> None:
    results = ingest.run(tmp_path, n=300, sensors=5, repeat=1)
    assert [r.raw["stored"] for r in results] == [300, 300]
    assert all(r.value > 0 for r in results)


def test_drain_puts_the_whole_backlog_in_influxdb(tmp_path: Path, influxd: InfluxD) -> None:
    (r,) = drain.run(tmp_path, influxd, n=1_500)
    assert r.raw["points_in_influx_ours"] == r.raw["points_in_influx_raw"] == 1_500


def test_query_returns_every_minute(tmp_path: Path) -> None:
    chart, r, cost = query.run(tmp_path, minutes=600, append_minutes=3)
    assert 0 < chart.raw["points_returned"] <= 600 and chart.raw["readings_in_range"] == 600
    assert chart.raw["same_buckets"] and chart.raw["backfill_ids"] == 4 * 600 + 4
    assert cost.raw["readings"] == 300 and all(cost.raw[m]["append_readings_per_s"] > 0 for m in ("raw", "roller", "upsert"))
    assert r.raw["readings_returned"] == 600
    assert r.raw["api_readings_returned"] == 600


def test_fleet_measures_memory_disk_and_alarm_latency(tmp_path: Path) -> None:
    lat, mem, disk = fleet.run(tmp_path, sensors=6, period=1.0, steady=2.0, hot=2, alarm_phase=8.0)
    assert lat.raw["alarms"] >= 1 and lat.value > 0
    assert mem.raw["rss_mb"] > 0 and mem.raw["readings"] > 0
    assert disk.raw["readings"] > 0


def test_memory_runs_the_daemon_as_the_unit_does_and_says_what_its_rss_is_made_of(tmp_path: Path,
                                                                                    influxd: InfluxD) -> None:
    env = memory.unit_env()
    assert env["MALLOC_ARENA_MAX"] == "2"  # deploy/systemd/coldchain.service's Environment=
    assert env["PYTHONOPTIMIZE"] == "2" and env["PYTHONPYCACHEPREFIX"] == "/opt/coldchain/pycache"
    raw = memory.measure(tmp_path, influxd.url, sensors=4, period=1.0, seconds=3.0, env=env)
    # the unit's compiled tree is install.sh's; here the bench compiles the same into its own, and the child loads it
    cache = Path(raw["env"]["PYTHONPYCACHEPREFIX"])
    assert raw["env"] == {**env, "PYTHONPYCACHEPREFIX": str(cache)} and raw["published"] > 0
    runtime = memory.ROOT / "daemon" / "app" / "runtime.py"
    assert (cache / runtime.parent.relative_to("/") / "runtime.cpython-{}{}.opt-2.pyc".format(*sys.version_info[:2])).exists()
    assert raw["rss_mb"] > 0 and raw["anonymous_mb"] > 0 and raw["file_backed_mb"] > 0
    assert raw["anonymous_mb_by_s"] and raw["sqlite_heap_mb_by_s"]  # the child's sqlite3_memory_used, at ready
    assert raw["sqlite_heap_mb_by_s"][0][1] > 0


def test_the_memory_floor_journals_and_acknowledges_under_the_same_load(tmp_path: Path, influxd: InfluxD) -> None:
    raw = memory.measure(tmp_path, influxd.url, sensors=4, period=1.0, seconds=3.0, flush_interval=0.5,
                         child_module="bench.memory_floor")
    assert raw["child"] == "bench.memory_floor" and raw["published"] > 0 and raw["rss_mb"] > 0
    with sqlite3.connect(tmp_path / "journal.db") as db:
        assert db.execute("SELECT count(DISTINCT sensor) FROM readings").fetchone()[0] == 4


# The comparison with Node-RED and mqtt2influxdb (scenario 7) needs those peers, which `make bench`
# installs (`make bench-peers`: npm and a venv of their own); it runs there, not in `make test`.


def test_memory_outages_stop_and_start_influxdb_in_cycles_and_sample_after_each_backfill() -> None:
    class Influx:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def stop(self) -> None:
            self.calls.append("stop")

        def start(self) -> None:
            self.calls.append("start")

    influx = Influx()
    cycles = memory.Outages(influx, down=10, up=20)  # type: ignore[arg-type]
    for t in range(0, 95, 2):
        cycles.tick(t, os.getpid())
    cycles.end()
    assert influx.calls == ["stop", "start"] * 4
    assert [t for t, _ in cycles.after_backfill] == [30, 60, 90]  # each cycle's sample is taken as the next begins
    assert all(mb > 0 for _, mb in cycles.after_backfill)
