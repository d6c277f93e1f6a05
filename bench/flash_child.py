"""The measured process of bench/flash.py: the real write path on a simulated clock; prints one JSON line.

Run as a script (`python bench/flash_child.py SPEC`) so that PYTHONPATH picks which checkout's `daemon`
it measures (bench/flash.py measures main's layout beside this one). Imports nothing of the bench.

Per simulated step (the smallest of the sensors' periods), every sensor due submits its samples, as a
polled driver does; `Pipeline.flush()` runs when the commit window of the source kind has passed (what
`Pipeline.run` does in real time); the rolls and retention run at their own intervals of simulated time.
The acked kind (MQTT) also commits early when 3/4 of the broker's window waits (`hurry_at`), and submits each
message with the 6-byte receipt the driver commits with it (`"receipts": false` leaves them out, as the child
did before session 11).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from daemon.app.plugins import parse_config
from daemon.ingest.pipeline import Pipeline
from daemon.ports.clock import Clock
from daemon.ports.model import Sample
from daemon.ports.sources import Receipt
from daemon.ports.stats import Stats
from daemon.storage import rollups
from daemon.storage.journal import Journal
from daemon.storage.retention import Retention


class SimClock(Clock):
    """Simulated time, moved by the load loop."""

    def __init__(self, t: float) -> None:
        super().__init__(start=t)
        self.t = t

    def now(self) -> float:
        return self.t

    def synchronised(self) -> bool | None:
        return True


def io() -> dict[str, int]:
    with open("/proc/self/io", encoding="utf-8") as f:
        return {k: int(v) for k, v in (line.split(":") for line in f)}


def files(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def config(spec: dict[str, Any]) -> Any:
    n = spec["sensors"]
    doc = {
        "site": {"id": "bench", "name": "bench"},
        "storage": {"journal": spec["journal"], "reserve_mb": 0, **spec.get("storage", {})},
        "zones": [{"id": f"z{z}", "name": f"z{z}", "commodity": "mandarin"} for z in range(10)],
        "sensors": [{"id": f"s{i}", "zone": f"z{i % 10}", "type": "simulated", "setpoint": 4.0,
                     "interval": spec["period"]} for i in range(n)],
        "contacts": [], "api": {"enabled": False},
        **({"mqtt": spec["mqtt"]} if "mqtt" in spec else {}),
    }
    return parse_config(yaml.safe_dump(doc), "flash.yaml", base_dir=Path(spec["journal"]).parent)


def windows(cfg: Any, spec: dict[str, Any]) -> tuple[float, float, float]:
    """(commit window, roll interval, retention interval) in simulated seconds, as the checkout configures them."""
    st = cfg.storage
    kind = spec.get("kind", "polled")
    commit = getattr(st, "commit_interval", st.flush_interval) if kind == "polled" else st.flush_interval
    roll = float(getattr(st, "roll_interval", rollups.ROLL_INTERVAL))
    defaults: dict[str, float] = Retention.__init__.__kwdefaults__ or {}
    retention = float(spec.get("retention_interval", defaults.get("interval", 3600.0)))
    return max(commit, 0.2), roll, retention


def hurry_at(cfg: Any, spec: dict[str, Any]) -> float:
    """Messages after which the MQTT driver commits whatever is left of the window (3/4 of the broker's in-flight
    window, `MqttDriver._broker_window`), for the acked kind; the checkout's `mqtt:` defaults unless the spec
    has its own. A driver that fell back from MQTT 5 to 3.1.1 is `{"mqtt": {"protocol": "3.1.1"}}`."""
    if spec.get("kind", "polled") != "acked":
        return float("inf")
    from daemon.ports.broker import MqttConfig

    m = cfg.mqtt or MqttConfig.model_validate({})
    window = m.receive_maximum if m.protocol == "5" and m.receive_maximum is not None else m.broker_inflight
    return float(max(1, window * 3 // 4))


def timed(by: dict[str, int], what: str, job: Callable[[], object]) -> None:
    """Run `job`, adding what this process wrote meanwhile to `by[what]`."""
    b = io()["write_bytes"]
    job()
    by[what] += io()["write_bytes"] - b


def lagging(journal: Journal) -> bool:
    """The Roller's other trigger: this many ids wait (a big center rolls before its interval)."""
    return rollups.state(journal).lag >= getattr(rollups, "ROLL_TAIL", float("inf"))


async def _load(spec: dict[str, Any], cfg: Any, clock: SimClock, pipe: Pipeline, journal: Journal,
                retention: Retention, by: dict[str, int], counts: dict[str, int]) -> None:
    """The simulated hours: samples in, commits at the window, rolls and retention passes at their times."""
    commit, roll_every, ret_every = windows(cfg, spec)
    hurry, waiting = hurry_at(cfg, spec), 0  # one message per sensor and period, all its quantities in it
    # the MQTT driver's receipt: 6 bytes per QoS 1 message, one per batch, and at a sensor rate a batch is one
    # message (drivers/sensors/mqtt/redelivery.py); committed with the readings into the `receipts` ring
    receipts = spec.get("kind", "polled") == "acked" and spec.get("receipts", True)
    quantities = ("temperature", "humidity") if spec.get("humidity", True) else ("temperature",)
    start, period, n = clock.t, spec["period"], spec["sensors"]
    end, step = start + spec["hours"] * 3600, period / n  # sensors spread evenly over their period
    next_commit, next_roll, next_ret, k = start + commit, start + roll_every, start + ret_every, 0
    while clock.t < end:
        pipe.submit([Sample(f"s{k % n}", q, 4.0 + (k % 17) / 10 if q == "temperature" else 90.0 + (k % 13) / 10)
                     for q in quantities],
                    Receipt("mqtt:127.0.0.1:1883", (k & 0xFFFF).to_bytes(2, "little") + (k * 2654435761 & 0xFFFFFFFF)
                            .to_bytes(4, "little")) if receipts else None)
        k += 1
        waiting += 1
        clock.t = start + k * step
        early = waiting >= hurry  # the broker's window is 3/4 full: the driver hurries the commit
        committed = clock.t >= next_commit or early
        if committed:
            b = io()["write_bytes"]
            await pipe.flush()
            by["commits"] += io()["write_bytes"] - b
            waiting = 0
            if early:  # the pipeline's next window starts with the next reading (`Pipeline._due`)
                counts["early_commits"] += 1
                next_commit = clock.t + commit
            else:
                next_commit += commit
            counts["commits"] += 1
        if clock.t >= next_roll or (committed and lagging(journal)):
            timed(by, "rolls", lambda: rollups.catch_up(journal))
            next_roll = clock.t + roll_every
        if clock.t >= next_ret:
            timed(by, "retention", retention.run_pass)
            next_ret += ret_every
    await pipe.flush()


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    cfg = config(spec)
    t0_open = time.perf_counter()
    journal = Journal(cfg.storage.journal)  # a v7 journal is migrated here
    opened = time.perf_counter() - t0_open
    page_size = int(journal.db._db.execute("PRAGMA page_size").fetchone()[0])
    migration_written = io()["write_bytes"]
    journal.db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the migration's WAL folded in before the window
    start = float(spec.get("start", 1_767_225_600.0))  # a journal a run left goes on from its end
    clock = SimClock(start)
    stats = Stats()
    retention = Retention(journal, clock, stats, raw_retention=cfg.storage.raw_retention,
                          rollup_retention=cfg.storage.rollup_retention, cursors=[])
    pipe = Pipeline(cfg, journal, clock, stats)
    if spec.get("warmup_hours"):  # a journal grown by the write path itself (from empty), not measured
        await _load({**spec, "hours": spec["warmup_hours"]}, cfg, clock, pipe, journal, retention,
                    {"commits": 0, "rolls": 0, "retention": 0}, {"commits": 0, "early_commits": 0})
        stats = Stats()
        retention = Retention(journal, clock, stats, raw_retention=cfg.storage.raw_retention,
                              rollup_retention=cfg.storage.rollup_retention, cursors=[])
        pipe = Pipeline(cfg, journal, clock, stats)
    rows0, f0, io0 = journal.readings.count(), files(Path(cfg.storage.journal)), io()
    cpu0 = time.process_time()
    by = {"commits": 0, "rolls": 0, "retention": 0}
    counts = {"commits": 0, "early_commits": 0}
    commit, roll_every, ret_every = windows(cfg, spec)
    await _load(spec, cfg, clock, pipe, journal, retention, by, counts)
    await pipe.flush()
    # the last pass stands for the next one: it deletes what aged out during the run (as many readings as it
    # stored), so its cost per reading is retention's, however long the run was beside the pass interval
    timed(by, "retention", retention.run_pass)
    io1, cpu = io(), time.process_time() - cpu0
    stored = journal.readings.count() - rows0 + stats.get("retention_deleted")
    journal.db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # growth: the WAL folded in, as at a clean stop
    io2 = io()
    growth = files(Path(cfg.storage.journal)) - f0
    journal.close()
    written = io2["write_bytes"] - io0["write_bytes"]  # the last WAL frames would be checkpointed later anyway
    return {
        "readings": stored, "warmup_hours": spec.get("warmup_hours", 0),
        "quantities": 2 if spec.get("humidity", True) else 1, "simulated_hours": spec["hours"],
        "kind": spec.get("kind", "polled"), "commit_window_s": commit,
        "receipts": spec.get("kind", "polled") == "acked" and spec.get("receipts", True), "roll_interval_s": roll_every,
        "retention_interval_s": ret_every, "write_bytes": written,
        "write_bytes_per_reading": round(written / max(stored, 1)),
        "syscw_per_reading": round((io1["syscw"] - io0["syscw"]) / max(stored, 1), 3),
        "final_checkpoint_bytes": io2["write_bytes"] - io1["write_bytes"],
        "growth_bytes_per_reading": round(growth / max(stored, 1)),
        "cpu_us_per_reading": round(cpu / max(stored, 1) * 1e6, 1),
        "written_per_reading_by": {k: round(v / max(stored, 1)) for k, v in by.items()},
        "commit_count": counts["commits"], "early_commit_count": counts["early_commits"],
        "hurry_at_messages": hurry_at(cfg, spec),
        "migration_s": round(opened, 2), "migration_written_mb": round(migration_written / 1e6, 1),
        "deleted_by_retention": stats.get("retention_deleted"),
        "sqlite": sqlite3.sqlite_version, "pid": os.getpid(), "page_size": page_size,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(drive(spec))))


if __name__ == "__main__":
    main()
