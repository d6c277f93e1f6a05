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

from bench.common import InfluxD, proc_stat

DB = "region"


class Readings:
    """InfluxDB up for the whole bench; the child writing only between `start()` and `stop()`."""

    def __init__(self, centers: int, rooms: int, speed: float) -> None:
        self.centers, self.rooms, self.speed = centers, rooms, speed
        self.root = Path(tempfile.mkdtemp(prefix="cc-hub-influx-"))
        self.influx = InfluxD(self.root)
        self.child: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Readings:
        self.influx.start()
        self.influx.create_database(DB)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait(15)
        self.influx.stop()

    def start(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-m", "bench.hub_readings", "--url", self.influx.url, "--db", DB, "--centers",
             str(self.centers), "--rooms", str(self.rooms), "--speed", str(self.speed)],
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
        series = self.influx.query('SELECT COUNT("temperature") FROM "readings"', DB)
        counted = int(series[0]["values"][0][1]) if series else 0
        assert self.influx.proc is not None
        stat = proc_stat(self.influx.proc.pid)
        on_disk = sum(f.stat().st_size for d in ("data", "wal") for f in (self.root / d).rglob("*") if f.is_file())
        cpu = stat["cpu_ticks"] / os.sysconf("SC_CLK_TCK")
        return {"sent": sent, "points_counted": counted, "influxd_cpu_s": round(cpu, 1),
                "influxd_rss_mib": round(stat.get("VmRSS", 0) / 1024), "influxd_bytes": on_disk}
