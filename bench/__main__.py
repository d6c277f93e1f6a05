"""`python -m bench` (or `make bench`): start the real peers, run every scenario, print the
table and write docs/benchmarks.md. Every figure is measured against a baseline or a target in
the same run; raw numbers go with it.

    python -m bench                 # full sizes, writes docs/benchmarks.md
    python -m bench --quick         # tiny sizes: proves the harness, writes nothing unless --out
    python -m bench --only ingest,drain
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import burst, drain, flash, fleet, ingest, memory, peers_compare, query, webpage
from bench import hub as hub_scale
from bench.common import InfluxD, Result, machine

ROOT = Path(__file__).resolve().parent.parent
FINDINGS = Path(__file__).with_name("findings.md")
HAND_FIGURES = Path(__file__).with_name("hand_figures.md")
"""Figures measured by hand since the last full run: kept after the table a run writes, not dropped by it."""
SCENARIOS = "ingest, drain, burst, query, fleet, memory, flash, webpage, peers, hub"

BOUNDS = {
    "ingest": "the daemon acknowledges a QoS 1 message only after its journal commit (fsync), so the broker's "
              "in-flight window (`max_inflight_messages`, 20 by default) caps the messages per commit. Beyond "
              "that, CPU: the daemon parses JSON, validates, inserts and runs the rules for each message on top "
              "of paho's packet handling, which is all the bare loop does; both share 2 cores with the broker "
              "and the publisher.",
    "drain": "the box's CPU: InfluxDB's write path (un-gzip, parse, index: 4-5.6 µs per point) and ours (journal "
             "read in three columns, line making, gzip: ~2 µs per reading alone, 3.4-4.9 µs under the box's load) "
             "share 2 cores. Ours is made ahead in a thread while two batches are on the wire, and the cursor "
             "commit runs during the next send, so the forwarder's send threads mostly wait on InfluxDB's answers.",
    "alarm_latency": "the commits on the path: the rules screen a reading as it arrives, a batch holding an alarm "
                     "event is committed at once instead of waiting for `storage.flush_interval`, then the alarm and "
                     "its messages are committed, then the dispatcher claims the message (another commit): three "
                     "fsyncs plus the MQTT hop. Quiet readings still share one commit per flush_interval.",
    "memory": "imported code, not data: Python, pydantic and the config models (~17 MB of model schemas and "
              "validators), FastAPI/uvicorn (~10 MB), paho, APScheduler; the shared libraries' pages (~17 MB "
              "file-backed). Drivers load by `type:` key, so only those the config names are imported; the "
              "InfluxDB 1.x sink writes line protocol without influxdb-client (~12 MB). "
              "CPU per reading: JSON parse, validation, journal insert, rules; ~3 x with group commit.",
    "disk": "growth: the row (id, ts, series, value, quality) and its (series, ts) index entry, about 60-80 "
            "bytes in SQLite pages. Block writes: commits, not readings: each commit appends whole 4 KiB "
            "pages to the WAL (table leaf, index leaf ...), the filesystem journals the fsync, and the "
            "checkpoint writes the pages again; so written bytes per reading = that per-commit cost / "
            "readings per commit, set by `flush_interval` and the reading rate.",
    "burst": "the journal's distinct times (an arrival time not after its series' last moves to last + 1 ms) make "
             "every reading its own point; the drain then runs at the forwarder's pace (see drain).",
    "history": "SQLite reading the hourly rollup tier (8,760 rows for the year), the 5-minute rows and raw "
               "readings at the range's edges, and the raw tail the 5-minute roll has not reached (rowid range "
               "scan), grouped into ~730 buckets; then FastAPI's JSON. The raw GROUP BY it replaces reads all "
               "525,600 rows through the (series, ts_ms) index.",
    "query": "building one Python Reading per row (525,600 of them) and SQLite's row fetch; the API caps a "
             "request at 100,000 readings. A year at 1-minute resolution is what the history endpoint's "
             "server-side buckets are for.",
    "rollup_cost": "the roll's UPSERT of one row per series and tier every 5 minutes, and the pages it "
                   "dirties (one per series and tier, keyed (series, bucket)): per reading, that cost divided "
                   "by the readings a series has in 5 minutes. Journal.append itself is unchanged; the roll "
                   "runs in its own thread and transaction.",
    "flash": "pages, not readings: a commit appends to the WAL the table's last leaf and, when it takes a new one, "
             "the page it comes from (free list trunk), its parent and page 1 (file header), each frame a page plus "
             "24 bytes; the checkpoint copies each distinct page once more. The kernel counts (and ext4 writes) the "
             "4 KiB blocks these dirty, so a frame of a 1 KiB page still costs a block when the block was clean "
             "(each commit's fsync cleans them): smaller pages save less than in proportion. A roll writes a few "
             "pages per series into each rollup tier and the series index; retention rewrites what it deletes (row "
             "by row, with SQLite rebalancing the siblings); both touch scattered pages, a block each whatever the "
             "page size. So bytes per reading = those blocks / readings per commit, roll and pass: set by "
             "`commit_interval` / `flush_interval`, the roll interval, the center's rate and the page size "
             "(`PAGE_SIZE`, daemon/storage/db.py). Measured on a copy of the year journal evicted from the page cache.",
    "webpage": "the first view: uPlot (51 KB minified, 22 KB as the box sends it gzipped) and the app's own "
               "modules, then the JSON of two history series bucketed to about one point per pixel; the 30-day "
               "click: the box reading 30 days through its rollup tiers for two series and the period statistics "
               "(raw readings for MKT), then uPlot's draw, a few ms.",
    "peers": "the broker's per-client queue (`max_queued_messages`, 1000 by default) when a consumer falls "
             "behind a burst; ours keeps a persistent QoS 1 session and acknowledges after the journal.",
}


def table(results: list[Result]) -> str:
    head = "| figure | measured | target | met |\n|---|---|---|---|\n"
    return head + "".join("| " + " | ".join(r.row()) + " |\n" for r in results)


def write_doc(path: Path, results: list[Result], facts: dict[str, str], elapsed: float) -> None:
    out = ["# Benchmarks", "",
           "Written by `make bench` (`python -m bench`); do not edit by hand: the figures measured by hand come",
           "from `bench/hand_figures.md`, the sections after the raw numbers from `bench/findings.md`. Each",
           "figure is a ratio against a baseline measured in the same run, or a value against its target",
           "(issue 8), with the raw numbers below it.", "",
           "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in facts.items()]
    out += ["", f"Whole run: {elapsed:.0f} s.", "", "## Figures", "", table(results).rstrip(), ""]
    if HAND_FIGURES.exists():
        out += [HAND_FIGURES.read_text(encoding="utf-8").rstrip(), ""]
    out += ["## Raw numbers and what bounds each figure", ""]
    for r in results:
        out += [f"### {r.title}", "", "```json", json.dumps(r.raw, ensure_ascii=False, indent=1), "```", ""]
        bound = BOUNDS.get(r.key.split("@")[0], "")
        if bound:
            out += [f"Bound by: {bound}", ""]
        out += [f"- {n}" for n in r.notes] + ([""] if r.notes else [])
    if FINDINGS.exists():
        out += [FINDINGS.read_text(encoding="utf-8").rstrip(), ""]
    path.write_text("\n".join(out), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--only", default="", help=f"comma list: {SCENARIOS}")
    ap.add_argument("--out", default=None, help="markdown file (default docs/benchmarks.md; none with --quick)")
    ap.add_argument("--drain-size", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    q, only = args.quick, {s.strip() for s in args.only.split(",") if s.strip()}
    tmp = Path(tempfile.mkdtemp(prefix="coldchain-bench-"))
    results: list[Result] = []
    t0 = time.perf_counter()
    influx = InfluxD(tmp / "influxd")
    influx.start()

    def step(name: str, fn: object) -> None:
        if only and name not in only:
            return
        print(f"== {name}", flush=True)
        s = time.perf_counter()
        try:
            rs = fn()  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - one failed scenario is reported as failed; the others still run
            traceback.print_exc()
            rs = [Result(key=name, title=f"{name} (failed)", value=math.nan, unit="", target="", met=False,
                         notes=[f"failed: {type(exc).__name__}: {exc}"])]
        for r in rs:
            print(f"   {r.title}: {r.value:.3g} {r.unit} (target {r.target}) {json.dumps(r.raw, ensure_ascii=False)}",
                  flush=True)
        print(f"   ({time.perf_counter() - s:.0f} s)", flush=True)
        results.extend(rs)

    try:
        step("ingest", lambda: ingest.run(tmp / "ingest", n=500 if q else 20_000, sensors=10 if q else 100,
                                          repeat=1 if q else 2))
        step("drain", lambda: drain.run(tmp / "drain", influx, n=2_000 if q else args.drain_size))
        step("burst", lambda: burst.run(tmp / "burst", influx, n=2_000 if q else 50_000, sensors=20 if q else 200))
        step("query", lambda: query.run(tmp / "query", minutes=1_000 if q else query.YEAR_MIN))
        for flush, label in ((60.0, ""), (0.0, "flush_interval 0")):  # the default (60 s since s12), group commit
            step("fleet", lambda f=flush, lb=label: fleet.run(
                tmp / f"fleet{f}", sensors=20 if q else 500, period=2.0 if q else 10.0, steady=4.0 if q else 30.0,
                hot=5 if q else 150, alarm_phase=8.0 if q else 25.0, flush_interval=f, label=lb))
        step("memory", lambda: memory.run(tmp / "memory", influx, seconds=20.0 if q else 120.0,
                                          sensors=20 if q else 200, year=not q))
        step("flash", lambda: flash.run(tmp / "flash", quick=q))
        step("webpage", lambda: webpage.run(tmp / "webpage", days=2 if q else 30, repeat=1 if q else 3))
        step("peers", lambda: peers_compare.run(tmp / "peers", influx, steady_s=4.0 if q else 20.0,
                                                per_topic=100 if q else 3000))
        step("hub", lambda: hub_scale.run(centers=5 if q else 100, rooms=4 if q else 20, repeat=5 if q else 20))
    finally:
        influx.stop()
    elapsed = time.perf_counter() - t0
    print()
    print(table(results))
    out = Path(args.out) if args.out else (None if q else ROOT / "docs" / "benchmarks.md")
    if out is not None:
        write_doc(out, results, machine(peer_versions()), elapsed)
        print(f"written {out}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def peer_versions() -> dict[str, str]:
    out = {}
    pkg = peers_compare.NODE_RED_DIR / "node_modules"
    for name in ("node-red", "node-red-contrib-influxdb"):
        try:
            out[name] = json.loads((pkg / name / "package.json").read_text())["version"]
        except OSError:
            out[name] = "not installed"
    node = shutil.which("node")
    if node:
        import subprocess

        out["Node.js"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    m2i = peers_compare.MQTT2INFLUXDB.parent / "python"
    if m2i.exists():
        import subprocess

        out["mqtt2influxdb"] = subprocess.run(
            [str(m2i), "-c", "import importlib.metadata as m; print(m.version('mqtt2influxdb'))"],
            capture_output=True, text=True).stdout.strip()
    return out


if __name__ == "__main__":
    sys.exit(main())
