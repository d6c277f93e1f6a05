"""The daemon side of bench/fleet.py: the real Daemon with a recording notifier, in a process
that imports only the daemon (so VmRSS is the daemon's, not the bench's or pytest's).

    python -m bench.fleet_child CONFIG.json

For bench/memory.py's questions, from the environment: BENCH_WRITER_CACHE_KIB overrides the journal writer's
page cache (daemon/storage/db.py), BENCH_TRACEMALLOC=DIR dumps a tracemalloc snapshot there at ready and then
every BENCH_TRACEMALLOC_EVERY seconds (300), to diff what the Python heap gained. BENCH_PROBE=FILE appends
SQLite's own heap (sqlite3_memory_used, through ctypes: Python's sqlite3 does not expose it) every 60 s.
BENCH_MODULES=FILE writes the names in sys.modules once the daemon is ready (what start-up imported).
BENCH_CLOCK_START=EPOCH_S starts the daemon's clock there (bench.memory --year: the year journal's end).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, ClassVar

import yaml


async def _child(cfg_path: str) -> None:
    from typing import Literal

    from daemon.app.plugins import parse_config
    from daemon.app.runtime import Daemon
    from daemon.ports.notify import Message, Notifier, NotifierBase
    from drivers import load_all
    from drivers.registry import notifier

    load_all()
    if kib := os.environ.get("BENCH_WRITER_CACHE_KIB"):
        import daemon.storage.db

        daemon.storage.db.WRITER_CACHE_KIB = int(kib)

    class RecordConfig(NotifierBase):
        type: Literal["bench_record"]
        out: str

    @notifier("bench_record")
    class Recorder(Notifier):
        Config: ClassVar[type[NotifierBase]] = RecordConfig
        sends: ClassVar[list[tuple[float, int | None, str]]] = []

        async def send(self, message: Message) -> str | None:
            self.sends.append((time.time(), message.alert_id, message.key))
            return str(message.outbox_id)

    doc = json.loads(Path(cfg_path).read_text(encoding="utf-8"))  # noqa: ASYNC240 - before the daemon starts
    text = yaml.safe_dump(doc, allow_unicode=True)  # as an installer writes it: a YAML file
    from daemon.ports.clock import Clock

    start = os.environ.get("BENCH_CLOCK_START")  # a journal from bench.flash: time goes on where its year ended
    d = Daemon(parse_config(text, "fleet.yaml", base_dir=Path(cfg_path).parent),
               clock=Clock(start=float(start)) if start else None)
    stages = _instrument(d)
    await d.start()
    if mods := os.environ.get("BENCH_MODULES"):
        Path(mods).write_text("\n".join(sorted(sys.modules)) + "\n", encoding="utf-8")  # noqa: ASYNC240 - once
    print("ready", flush=True)
    probes = [asyncio.create_task(_snapshots())] if tracemalloc.is_tracing() else []
    if probe := os.environ.get("BENCH_PROBE"):
        probes.append(asyncio.create_task(_sqlite_memory(Path(probe))))
    await d.wait()
    for task in probes:
        task.cancel()
    await d.stop()
    with open(doc["notifiers"][0]["out"], "w", encoding="utf-8") as f:  # noqa: ASYNC230 - the daemon has stopped
        f.writelines(json.dumps({"t": t, "alert_id": aid, "key": key}) + "\n" for t, aid, key in Recorder.sends)
    Path(doc["notifiers"][0]["out"]).with_name("stages.json").write_text(json.dumps(stages), encoding="utf-8")


async def _snapshots() -> None:
    """tracemalloc snapshots at ready and every BENCH_TRACEMALLOC_EVERY s (the first one is the base of the diff)."""
    out = Path(os.environ["BENCH_TRACEMALLOC"])
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a bench knob, before the first snapshot
    every = float(os.environ.get("BENCH_TRACEMALLOC_EVERY", "300"))
    t0 = time.monotonic()
    while True:
        tracemalloc.take_snapshot().dump(str(out / f"snap-{time.monotonic() - t0:06.0f}.tm"))
        await asyncio.sleep(every)


async def _sqlite_memory(out: Path) -> None:
    """SQLite's heap (page caches of every connection, schema, statements) in bytes, every 60 s."""
    lib = ctypes.CDLL("libsqlite3.so.0")  # the library _sqlite3 is linked to: the same instance, the same counters
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    t0 = time.monotonic()
    while True:
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps([round(time.monotonic() - t0), lib.sqlite3_memory_used()]) + "\n")
        await asyncio.sleep(60)


def _instrument(d: Any) -> dict[str, Any]:
    """Stamp the stages of an alarm from outside the core: the driver's submit() (call, and its
    future done = journal commit) for hot readings, and AlertManager.apply() returning a `fire`."""
    stages: dict[str, Any] = {"emits": {}, "fired": {}}
    for drv in d.drivers:
        orig_submit = drv.ctx.submitter()

        def submit(samples: Any, *receipt: Any, _orig: Any = orig_submit) -> Any:
            t0 = time.time()
            fut = _orig(samples, *receipt)
            hot = [s.sensor for s in samples if s.value is not None and s.value >= 12]
            if fut is not None and hot:
                def done(_: Any, t0: float = t0, hot: list[str] = hot) -> None:
                    t1 = time.time()
                    for sensor in hot:
                        stages["emits"].setdefault(sensor, []).append((t0, t1))

                fut.add_done_callback(done)
            return fut

        drv.ctx.submit = submit
    orig_apply = d.alerts.apply

    def apply(events: Any) -> Any:
        out = orig_apply(events)
        t = time.time()
        for action, row in out:
            if action == "fire":
                stages["fired"][str(row.id)] = t
        return out

    d.alerts.apply = apply
    return stages


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if os.environ.get("BENCH_TRACEMALLOC"):
        tracemalloc.start(8)
    asyncio.run(_child(sys.argv[1]))
