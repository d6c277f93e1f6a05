"""The bench's InfluxDB 1.6.7 (Debian's, started here) and the readings child (bench/hub_readings.py) that
writes the region's readings into it while the hub's workers take the day's events.

What it reports is counted by the server: distinct points (`SELECT COUNT`), not POSTs the child believes went
through; a repeated (series, time) would overwrite and count once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import urllib3

from bench.common import InfluxD, proc_stat
from bench.hub_readings import T0_S
from tests.peers import VictoriaMetrics

DB = "region"
_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=60))


class Readings:
    """The TSDB up for the whole bench (InfluxDB 1.6.7, or VictoriaMetrics with `target` "vm", deduplicating
    one sample per series and ms as InfluxDB overwrites); the child writing only between `start()` and `stop()`."""

    def __init__(self, centers: int, rooms: int, speed: float, target: str = "influxdb1") -> None:
        self.centers, self.rooms, self.speed, self.target = centers, rooms, speed, target
        self.root = Path(tempfile.mkdtemp(prefix="cc-hub-influx-"))
        self.influx = InfluxD(self.root)
        self.vm = VictoriaMetrics(self.root)
        self.child: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.vm.url if self.target == "vm" else self.influx.url

    def __enter__(self) -> Readings:
        if self.target == "vm":
            self.vm.start()
        else:
            self.influx.start()
            self.influx.create_database(DB)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait(15)
        (self.vm if self.target == "vm" else self.influx).stop()

    def start(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-m", "bench.hub_readings", "--url", self.url, "--db", DB, "--target", self.target,
             "--centers", str(self.centers), "--rooms", str(self.rooms), "--speed", str(self.speed)],
            stdout=subprocess.PIPE, stderr=(self.root / "readings.log").open("wb"))

    def stop(self) -> dict[str, Any]:
        """The child's own summary, then the server's figures: points counted, CPU seconds, bytes on disk (most
        of them the series file's preallocated segments in a run this short: not bytes per point)."""
        assert self.child is not None and self.child.stdout is not None
        self.child.terminate()
        out, _ = self.child.communicate(timeout=120)
        lines = out.decode().strip().splitlines()
        if self.child.returncode or not lines:
            raise RuntimeError(f"readings child failed: {(self.root / 'readings.log').read_text()[-2000:]}")
        sent: dict[str, Any] = json.loads(lines[-1])
        counted = self.counted()
        server = self.vm if self.target == "vm" else self.influx
        assert server.proc is not None
        stat = proc_stat(server.proc.pid)
        dirs = ("vm-data",) if self.target == "vm" else ("data", "wal")
        on_disk = sum(f.stat().st_size for d in dirs for f in (self.root / d).rglob("*") if f.is_file())
        cpu = stat["cpu_ticks"] / os.sysconf("SC_CLK_TCK")
        name = "vm" if self.target == "vm" else "influxd"
        return {"sent": sent, "points_counted": counted, f"{name}_cpu_s": round(cpu, 1),
                f"{name}_rss_mib": round(stat.get("VmRSS", 0) / 1024), f"{name}_bytes": on_disk}

    def counted(self) -> int:
        """Distinct points the server holds: InfluxDB's COUNT, or VictoriaMetrics' samples over the whole day
        (count_over_time after a flush, at the day's end; the readings are stamped in the past)."""
        if self.target != "vm":
            series = self.influx.query('SELECT COUNT("temperature") FROM "readings"', DB)
            return int(series[0]["values"][0][1]) if series else 0
        _http.request("GET", f"{self.vm.url}/internal/force_flush")
        end = T0_S + 2 * 86_400
        resp = _http.request("GET", f"{self.vm.url}/api/v1/query", fields={
            "query": 'sum(count_over_time(readings_temperature[3d]))', "time": str(end)})
        result = json.loads(resp.data)["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0
