"""Child of test_commit_window.py: a pipeline with its real `run()` loop; one sample every 50 ms of one
sensor of the kind asked for; prints each reading's value once submitted (polled) or once its commit future
resolved (acknowledged, as the MQTT driver acks only then), so the parent knows what was handed over."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from daemon.ingest.pipeline import Pipeline
from daemon.ports.clock import Clock
from daemon.ports.model import Sample
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL, make_config


async def main(tmp: Path, kind: str, window: float) -> None:
    text = MINIMAL.replace("storage: {journal: journal.db}",
                           f"storage: {{journal: journal.db, commit_interval: {window}, flush_interval: {window}}}")
    if kind == "acked":
        text = text.replace("type: simulated, setpoint: 6.5", "type: mqtt, topic: t/s1, format: json, values: {temperature: t}")
        text = "mqtt: {host: 127.0.0.1}\n" + text
    cfg = make_config(tmp, text)
    journal = Journal(tmp / "journal.db")
    pipe = Pipeline(cfg, journal, Clock(), Stats())
    asyncio.get_running_loop().create_task(pipe.run())
    k = 0
    while True:
        k += 1
        fut = pipe.submit([Sample("s1", "temperature", float(k), "C")])
        assert fut is not None
        if kind == "acked":
            fut.add_done_callback(lambda f, k=k: print(f"acked {k}", flush=True))
        else:
            print(f"submitted {k}", flush=True)
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
