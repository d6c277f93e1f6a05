"""Scenario 4b: resident memory as issue 13 states the target: 200 MQTT sensors, the API on (its page
and /metrics fetched while it runs) and one InfluxDB sink, the real Daemon in a process of its own
(bench/fleet_child.py), sampled from /proc/<pid> over the window.

    python -m bench.memory --seconds 120          # its own broker and InfluxDB
    python -m bench.memory --no-unit-env           # without the systemd unit's Environment= (MALLOC_ARENA_MAX=2)

Reports VmRSS at the end and its peak, the slope over the window's second half (MB/h; a short
window only bounds a slow rise, the soak measures it), and what the RSS is made of
(/proc/<pid>/smaps_rollup: anonymous memory = Python heap, malloc arenas and stacks; file-backed =
the shared libraries and .so pages touched).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import urllib3

from bench import flash
from bench.common import PY, BenchBroker, InfluxD, Result, check
from bench.fleet import Publisher, config
from daemon.storage.db import PAGE_SIZE
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))


def unit_env(unit: Path = ROOT / "deploy" / "systemd" / "coldchain.service") -> dict[str, str]:
    """The `Environment=` settings of the systemd unit: the daemon is measured as it is run (MALLOC_ARENA_MAX)."""
    lines = unit.read_text(encoding="utf-8").splitlines()
    return dict(ln.removeprefix("Environment=").split("=", 1) for ln in lines if ln.startswith("Environment="))


def compiled(env: dict[str, str], cache: Path = ROOT / ".bench" / "pycache") -> dict[str, str]:
    """The unit's PYTHONPYCACHEPREFIX is install.sh's compiled tree (deploy/install.sh, compile_for_unit): here the
    same compile, of the standard library, this environment and this checkout, into `cache`. So the child loads
    its modules as the box does, rather than compiling each at start (measured ~3 MB more RSS with -OO)."""
    if "PYTHONPYCACHEPREFIX" not in env:
        return env
    stdlib = sysconfig.get_paths()["stdlib"]
    level = "-OO" if env.get("PYTHONOPTIMIZE") == "2" else "-O" if env.get("PYTHONOPTIMIZE") else "-B"
    subprocess.run([PY, "-I", level, "-X", f"pycache_prefix={cache}", "-m", "compileall", "-q", "-j", "0", "-x",
                    f"^{stdlib}/(site-packages|dist-packages)/|/(test|tests|idlelib|tkinter|turtledemo|lib2to3)/",
                    stdlib, str(Path(sys.prefix) / "lib"), *(str(ROOT / d) for d in ("daemon", "drivers", "bench"))],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


def rollup(pid: int) -> dict[str, int]:
    """Rss, Anonymous and the file-backed part (KiB) of a process, from smaps_rollup."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    out["File"] = out.get("Rss", 0) - out.get("Anonymous", 0)
    return out


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def _browse(port: int) -> None:
    """What an open page does: the page, the zones, /metrics."""
    for path in ("/", "/api/v1/zones", "/metrics"):
        with contextlib.suppress(urllib3.exceptions.HTTPError):
            _http.request("GET", f"http://127.0.0.1:{port}{path}")


def _slope_mb_h(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of the second half of (t, KiB) samples, in MB per hour."""
    half = samples[len(samples) // 2:]
    if len(half) < 2:
        return float("nan")
    n = len(half)
    mt = sum(t for t, _ in half) / n
    mv = sum(v for _, v in half) / n
    den = sum((t - mt) ** 2 for t, _ in half) or 1.0
    return sum((t - mt) * (v - mv) for t, v in half) / den * 3600 / 1024


def _probe(path: Path) -> list[tuple[int, float]]:
    """The child's sqlite3_memory_used samples (bench/fleet_child.py), in MB."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(t, round(b / 1024 / 1024, 1)) for t, b in rows]


def _config(tmp: Path, mqtt_port: int, api_port: int, influx_url: str, sensors: int,
            flush_interval: float | None) -> Path:
    """bench.fleet's config with the API on and one InfluxDB 1.x sink, written where the child reads it."""
    doc = config(tmp, mqtt_port, sensors, flush_interval or 0.0)
    if flush_interval is None:
        del doc["storage"]["flush_interval"]
    doc["api"] = {"enabled": True, "host": "127.0.0.1", "port": api_port}
    doc["sinks"] = [{"id": "influx", "type": "influxdb1", "url": influx_url, "database": "memory"}]
    _http.request("POST", f"{influx_url}/query", fields={"q": 'CREATE DATABASE "memory"'})
    path = tmp / "memory.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


class Outages:
    """InfluxDB stopped for `down` seconds, then up for `up`, over and over from the window's start: RSS is
    sampled at the end of each up phase, when the backlog of the outage before has been sent. Equal outages
    tell a leak (a rise on each) from a high-water mark (a rise on the first few, then none)."""

    def __init__(self, influx: InfluxD, down: float, up: float) -> None:
        self.influx, self.down, self.up = influx, down, up
        self.after_backfill: list[tuple[int, float]] = []
        self._stopped = False

    def tick(self, t: float, pid: int) -> None:
        """Called with the window's clock (s) every sample."""
        cycle = int(t // (self.down + self.up))
        in_down = t % (self.down + self.up) < self.down
        if in_down and not self._stopped:
            if cycle > 0:
                self.after_backfill.append((round(t), round(_rss_kb(pid) / 1024, 1)))
            self.influx.stop()
            self._stopped = True
        elif not in_down and self._stopped:
            self.influx.start()
            self._stopped = False

    def end(self) -> None:
        if self._stopped:
            self.influx.start()
            self._stopped = False


def _sample(pid: int, api_port: int, seconds: float,
            outages: Outages | None) -> tuple[list[tuple[float, int]], list[tuple[int, float]]]:
    """(t, RSS KiB) every ~2 s while browsing the API, and (t, anonymous MB) every ~minute, over `seconds`."""
    samples: list[tuple[float, int]] = []
    anon: list[tuple[int, float]] = []
    t0 = time.monotonic()
    while (now := time.monotonic()) - t0 < seconds:
        _browse(api_port)
        if outages is not None:
            outages.tick(now - t0, pid)
        samples.append((now - t0, _rss_kb(pid)))
        if len(samples) % 30 == 1:  # every ~minute: what the RSS is made of as it rises
            anon.append((round(now - t0), round(rollup(pid).get("Anonymous", 0) / 1024, 1)))
            print(json.dumps({"t_s": anon[-1][0], "rss_mb": round(samples[-1][1] / 1024, 1),  # a long run's log
                              "anonymous_mb": anon[-1][1]}), file=sys.stderr, flush=True)
        time.sleep(2.0)
    return samples, anon


def measure(tmp: Path, influx_url: str, sensors: int = 200, period: float = 5.0, seconds: float = 90.0,
            env: dict[str, str] | None = None, flush_interval: float | None = None,
            child_module: str = "bench.fleet_child", year: bool = False,
            outages: Outages | None = None) -> dict[str, Any]:
    """Run the child under load for `seconds` after one period of warm-up; the raw figures. `flush_interval`
    None is the product's default (60 s since session 12; this bench ran 0.2 s until then). `child_module`
    bench.memory_floor runs the baseline instead of the daemon. `year`: on a copy of bench.flash's year journal
    (90 day partitions, a year of rollups, ~1.1 GB, cached), the clock going on from the year's end. `outages`:
    InfluxDB stopped and started in cycles over the window (Outages)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = compiled(env or {})
    broker = BenchBroker(tmp / "mosq")
    broker.start()
    api_port = free_port()
    cfg_path = _config(tmp, broker.port, api_port, influx_url, sensors, flush_interval)
    if year:
        shutil.copyfile(flash.year_journal(PAGE_SIZE, "partitioned"), tmp / "journal.db")
        env = {**(env or {}), "BENCH_CLOCK_START": str(flash.T_END / 1000)}
    child = subprocess.Popen([PY, "-m", child_module, str(cfg_path)], stdout=subprocess.PIPE, cwd=ROOT,
                             text=True, env={**os.environ, "BENCH_PROBE": str(tmp / "probe.jsonl"), **(env or {})})
    pub: Publisher | None = None
    published = 0
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("memory daemon did not start")
        ready_kb = _rss_kb(child.pid)  # imports, config and start-up, before any reading
        pub = Publisher(broker.port, sensors, period)
        pub.start()
        time.sleep(period)
        samples, anon = _sample(child.pid, api_port, seconds, outages)
        parts = rollup(child.pid)
        with open(f"/proc/{child.pid}/status", encoding="utf-8") as f:
            status = {ln.split(":")[0]: ln.split(":")[1].strip() for ln in f}
    finally:
        if outages is not None:
            outages.end()
        if pub is not None:
            published = pub.count
            pub.stop()
        child.terminate()
        child.wait(60)
        broker.stop()
    return {"child": child_module, "journal": "year" if year else "new", "sensors": sensors, "period_s": period,
            "window_s": seconds, "env": env or {},
            "flush_interval_s": "default" if flush_interval is None else flush_interval,
            "rss_ready_mb": round(ready_kb / 1024, 1), "rss_mb": round(samples[-1][1] / 1024, 1),
            "rss_samples_mb": [round(v / 1024, 1) for _, v in samples[:: max(1, len(samples) // 8)]],
            "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1),
            "anonymous_mb": round(parts.get("Anonymous", 0) / 1024, 1),
            "file_backed_mb": round(parts["File"] / 1024, 1), "threads": int(status["Threads"]),
            "anonymous_mb_by_s": anon, "sqlite_heap_mb_by_s": _probe(tmp / "probe.jsonl"),
            "slope_mb_per_h_second_half": round(_slope_mb_h(samples), 2),
            "published": published,
            **({"rss_after_each_backfill_mb": outages.after_backfill} if outages is not None else {})}


def run(tmp: Path, influx: InfluxD, seconds: float = 90.0, sensors: int = 200, year: bool = False) -> list[Result]:
    """The daemon on a new journal, the floor under the same load, and (`year`) the daemon on a year-old journal."""
    raw = measure(tmp, influx.url, sensors=sensors, seconds=seconds, env=unit_env())
    aged = _year(tmp, influx, sensors, seconds) if year else []
    floor = measure(tmp / "floor", influx.url, sensors=sensors, seconds=seconds, env=unit_env(),
                    child_module="bench.memory_floor")
    own = round(raw["rss_mb"] - floor["rss_mb"], 1)
    return [Result(key="memory@target", title=f"4b. resident memory, {sensors} MQTT sensors, API and InfluxDB sink",
                   value=raw["rss_mb"], unit="MB", target="<= 60 at 200 sensors",
                   met=check(raw["rss_mb"], "<= 60") if sensors >= 200 else None, raw=raw,
                   notes=[f"the same load on the bare stack (bench/memory_floor.py: pydantic, paho, SQLite, urllib3, "
                          f"FastAPI on uvicorn, none of the daemon's code) ends at {floor['rss_mb']} MB in this run; "
                          f"the daemon's own code and data are the {own} MB above it (the daemon serves its API "
                          f"on h11 since s14, without uvicorn's ~2.9 MB: the floor is the design card's stack)",
                          "flatness over hours is the soak's figure (bench/soak.py, docs/robustness.md); the "
                          "slope here is over a short window"]),
            Result(key="memory@floor", title=f"4b. the baseline: the bare stack under the same load "
                                             f"(bench/memory_floor.py), {sensors} MQTT sensors",
                   value=floor["rss_mb"], unit="MB", target="", met=None, raw=floor,
                   notes=[f"ready {floor['rss_ready_mb']} MB (the daemon: {raw['rss_ready_mb']}); "
                          f"the daemon minus the floor: {own} MB"]), *aged]


def _year(tmp: Path, influx: InfluxD, sensors: int, seconds: float) -> list[Result]:
    raw = measure(tmp / "year", influx.url, sensors=sensors, seconds=seconds, env=unit_env(), year=True)
    return [Result(key="memory@year", title=f"4b. same, {sensors} MQTT sensors, on a year-old journal (bench.flash's: "
                                            "90 day partitions, a year of rollups)",
                   value=raw["rss_mb"], unit="MB", target="<= 60 at 200 sensors",
                   met=check(raw["rss_mb"], "<= 60") if sensors >= 200 else None, raw=raw,
                   notes=["each SQLite connection holds the schema (the views have one arm per partition) and its "
                          "statements: the journal's age is part of the figure"])]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.memory")
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--sensors", type=int, default=200)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the daemon's environment")
    ap.add_argument("--no-unit-env", action="store_true", help="leave out the systemd unit's Environment= lines")
    ap.add_argument("--flush-interval", type=float, default=None, help="storage.flush_interval (default: the default)")
    ap.add_argument("--floor", action="store_true", help="run the baseline (bench/memory_floor.py) instead")
    ap.add_argument("--year", action="store_true", help="on a copy of bench.flash's year journal, not a new one")
    ap.add_argument("--outages", default=None, metavar="DOWN,UP",
                    help="stop InfluxDB for DOWN s, start it for UP s, in cycles over the window")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="coldchain-memory-"))
    influx = InfluxD(tmp / "influxd")
    influx.start()
    try:
        env = {**({} if args.no_unit_env else unit_env()), **dict(e.split("=", 1) for e in args.env)}
        cycles = Outages(influx, *map(float, args.outages.split(","))) if args.outages else None
        print(json.dumps(measure(tmp / "run", influx.url, args.sensors, seconds=args.seconds, env=env,
                                 flush_interval=args.flush_interval,
                                 child_module="bench.memory_floor" if args.floor else "bench.fleet_child",
                                 year=args.year, outages=cycles), indent=1))
    finally:
        influx.stop()


if __name__ == "__main__":
    main()
