"""The daemon side of bench/soak.py: the real Daemon with a recording notifier, in a process that
imports only the daemon (so /proc/<pid> figures are the daemon's).

    python -m bench.soak_child CONFIG.json

Prints `ready <api port>` once started, runs until SIGTERM, stops cleanly; on SIGUSR1 appends its
thread names to threads.jsonl beside the config. Unlike bench/fleet_child.py
the recorder appends each send to its file at once: the soak stops and starts the child mid-run, and
every process's sends must be counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar, TextIO

import yaml


async def _child(cfg_path: str) -> None:
    from typing import Literal

    from daemon.app.plugins import parse_config
    from daemon.app.runtime import Daemon
    from daemon.ports.notify import Message, Notifier, NotifierBase
    from drivers import load_all
    from drivers.registry import notifier

    load_all()
    # before the daemon starts, so blocking here holds up nothing
    doc = json.loads(Path(cfg_path).read_text(encoding="utf-8"))  # noqa: ASYNC240
    out = open(doc["notifiers"][0]["out"], "a", encoding="utf-8")  # noqa: SIM115, ASYNC230 - open for the process's life

    class RecordConfig(NotifierBase):
        type: Literal["soak_record"]
        out: str

    @notifier("soak_record")
    class Recorder(Notifier):
        Config: ClassVar[type[NotifierBase]] = RecordConfig

        async def send(self, message: Message) -> str | None:
            out.write(json.dumps({"t": time.time(), "pid": os.getpid(), "outbox_id": message.outbox_id,
                                  "alert_id": message.alert_id, "key": message.key, "contact": message.contact})
                      + "\n")
            out.flush()
            return str(message.outbox_id)

    text = yaml.safe_dump(doc, allow_unicode=True)  # as an installer writes it: a YAML file
    d = Daemon(parse_config(text, "soak.yaml", base_dir=Path(cfg_path).parent))
    await d.start()
    names = Path(cfg_path).with_name("threads.jsonl").open("a", encoding="utf-8")
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _thread_names, names)
    print(f"ready {d.api_port}", flush=True)
    await d.wait()
    await d.stop()
    out.close()
    names.close()


def _thread_names(f: TextIO) -> None:
    """On SIGUSR1 (the soak's sampler): which threads the daemon has, by name without their number
    (`asyncio_3` -> `asyncio`). /proc counts them; this says whose they are."""
    names = Counter(re.sub(r"[-_:]?\d+$", "", t.name) for t in threading.enumerate())
    f.write(json.dumps({"t": time.time(), "pid": os.getpid(), "threads": dict(names)}) + "\n")
    f.flush()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_child(sys.argv[1]))
