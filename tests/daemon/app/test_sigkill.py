"""SIGKILL during ingest and forward, many times: afterwards the journal and InfluxDB agree,
every journaled reading present in InfluxDB exactly once with its own timestamp.

Default run: a dozen kills (well under a minute). `COLDCHAIN_LONG=1` runs a hundred.
"""

from __future__ import annotations

import asyncio
import os
import random
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.app.plugins import load_config
from daemon.forwarding.forwarder import Forwarder, stop_all
from daemon.ports.clock import Clock
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from drivers import load_all
from drivers.registry import SINKS
from tests.peers import InfluxD, wait_until

pytestmark = [pytest.mark.peer]
ROOT = Path(__file__).resolve().parents[3]
KILLS = 100 if os.environ.get("COLDCHAIN_LONG") == "1" else 12

CONFIG = """
site: {{id: kill, name: 断电测试}}
storage: {{journal: journal.db, flush_interval: 0.02, commit_interval: 0.02}}
zones:
  - {{id: z1, name: 1号库, commodity: mandarin}}
  - {{id: z2, name: 2号库, commodity: kiwifruit}}
sensors:
  - {{id: s1, zone: z1, type: simulated, setpoint: 6.5, interval: 60, humidity: {{mean: 90}}, seed: 1}}
  - {{id: s2, zone: z1, type: simulated, setpoint: 6.5, interval: 60, seed: 2}}
  - {{id: s3, zone: z2, type: simulated, setpoint: 0.5, interval: 60, humidity: {{mean: 92}}, seed: 3}}
  - {{id: s4, zone: z2, type: simulated, setpoint: 0.5, interval: 60, seed: 4}}
  - {{id: s5, zone: z1, type: simulated, setpoint: 6.5, interval: 60, humidity: {{mean: 88}}, seed: 5}}
  - {{id: s6, zone: z2, type: simulated, setpoint: 0.5, interval: 60, humidity: {{mean: 93}}, seed: 6}}
sinks:
  - {{id: central, type: influxdb1, url: "{url}", database: {db}, batch_size: 40, timeout: 5}}
api: {{enabled: false}}
"""


def run_once(config: Path, log: Path, rng: random.Random, speed: float = 6000,
             window: tuple[float, float] = (0.5, 3.0), after_ready: bool = False) -> bool:
    """Start the daemon, SIGKILL it at a random moment in `window` (real seconds); True if it had started all tasks.

    `after_ready` counts the window from the daemon's `ready` line (at most 60 s away), so a slow
    start on a loaded machine does not turn every run into a kill during start-up."""
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.daemon.accelerated_daemon", str(config), str(speed)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=out)
    assert proc.stdout is not None
    ready = False
    if after_ready:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = bool(sel.select(timeout=60)) and b"ready" in proc.stdout.readline()
    try:
        proc.wait(timeout=rng.uniform(*window))  # the random moment; the daemon never exits by itself
        raise AssertionError(f"daemon exited with {proc.returncode}; see {log}")
    except subprocess.TimeoutExpired:
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    ready = ready or b"ready" in proc.stdout.read()
    proc.stdout.close()
    return ready


def journal_rows(journal: Journal) -> set[tuple[Any, ...]]:
    rows, last = set(), 0
    while batch := journal.readings.read_after(last, 10_000):
        rows |= {(round(r.ts * 1000), r.zone, r.sensor, r.quantity.value, r.value) for r in batch}
        last = int(batch[-1].id or 0)
    return rows


def influx_rows(influxd: InfluxD, db: str) -> tuple[set[tuple[Any, ...]], int]:
    rows, n = set(), 0
    for p in influxd.points(db, "readings"):
        for q in ("temperature", "humidity"):
            if p.get(q) is not None:
                rows.add((p["time"], p["zone"], p["sensor"], q, p[q]))
                n += 1
    return rows, n


def test_sigkill_loop_loses_and_duplicates_nothing(influxd: InfluxD, influx_db: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(url=influxd.url, db=influx_db), encoding="utf-8")
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    # every other kill counts its moment from the daemon's `ready` line: on a loaded CI machine a start can
    # take longer than the whole window, and the loop must still kill running daemons, not only starting ones
    ready = sum(run_once(config, tmp_path / "daemon.log", rng, after_ready=i % 2 == 1) for i in range(KILLS))
    assert ready > 0, f"the daemon never got running; see {tmp_path / 'daemon.log'}"

    cfg = load_config(config)
    journal = Journal(cfg.storage.journal)
    assert journal.quick_check() == "ok"
    assert journal.cursors.get("sink:central") > 0, "nothing was forwarded between the kills"

    # the next start drains what the last kill left behind (the sensors stay off: the journal is final)
    load_all()
    sink = SINKS["influxdb1"](cfg.sinks[0], {z.id: z.commodity for z in cfg.zones if z.commodity})
    f = Forwarder(sink, journal, Clock(), Stats(), poll_interval=0.05)

    async def drain() -> None:
        task = asyncio.create_task(f.run())
        try:
            await asyncio.to_thread(wait_until, lambda: journal.cursors.get("sink:central") == journal.readings.max_id(), 60,
                                    "the backlog forwarded")
        finally:
            await stop_all([f], [task])
            await sink.close()

    asyncio.run(drain())
    expected = journal_rows(journal)
    got, n = influx_rows(influxd, influx_db)
    assert journal.readings.count() == len(expected) > 0  # no two journal readings share series and timestamp
    assert n == len(got) == len(expected)  # once each: the same count of values, no more
    assert got == expected  # the same values at the same ms timestamps
