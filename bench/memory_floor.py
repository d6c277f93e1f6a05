"""The baseline of bench/memory.py: the least a daemon on the design card's stack can be, under the same load.

    python -m bench.memory_floor CONFIG.json     # started by bench.memory, as bench.fleet_child is

It reads the same config file the daemon gets and does the same duties in the plainest way the stack allows,
with none of the daemon's own code: pydantic checks the config, paho (MQTT 5, QoS 1, manual acknowledgement)
takes the messages, a thread commits them to an SQLite WAL journal every `storage.flush_interval` (60 s, as
the daemon) and only then sends the PUBACKs, urllib3 posts the new rows to InfluxDB every 10 s, and uvicorn
serves a FastAPI app with the three paths the bench fetches. So RSS(daemon) - RSS(this) is what the daemon's
own code and data cost, and RSS(this) is the floor no change to the daemon can go below.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import fastapi
import paho.mqtt.client as paho
import urllib3
import uvicorn
from fastapi.responses import HTMLResponse, PlainTextResponse
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel

EARLY = 750  # commit at this many unacknowledged, as the daemon does at 3/4 of the broker's 1000


class _Mqtt(BaseModel):
    host: str
    port: int
    client_id: str


class _Sensor(BaseModel):
    id: str
    topic: str


class _Config(BaseModel):
    mqtt: _Mqtt
    sensors: list[_Sensor]
    storage: dict[str, Any]
    api: dict[str, Any]
    sinks: list[dict[str, Any]]


class Floor:
    """Receive, journal, acknowledge, forward: one lock, one list, one connection."""

    def __init__(self, cfg: _Config) -> None:
        self.cfg = cfg
        self.by_topic = {s.topic: s.id for s in cfg.sensors}
        self.window = float(cfg.storage.get("flush_interval", 60.0))
        self.db = sqlite3.connect(cfg.storage["journal"], check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS readings (sensor TEXT, ts REAL, value REAL)")
        self.lock = threading.Lock()
        self.pending: list[tuple[int, str, float, float]] = []  # (mid, sensor, ts, value)
        self.unsent: list[tuple[str, float, float]] = []
        self.more = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=cfg.mqtt.client_id, protocol=paho.MQTTv5,
                             manual_ack=True)
        self.c.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in self.by_topic])
        self.c.on_message = self.on_message
        self.http = urllib3.PoolManager(retries=False)
        self.influx = cfg.sinks[0]

    def on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        value = float(json.loads(msg.payload)["temperature"])
        with self.lock:
            self.pending.append((msg.mid, self.by_topic.get(msg.topic, "?"), time.time(), value))
            if len(self.pending) >= EARLY:
                self.more.set()

    def committer(self) -> None:
        """Commit every window (or at EARLY), then acknowledge what the commit made durable."""
        while True:
            self.more.wait(self.window)
            self.more.clear()
            with self.lock:
                batch, self.pending = self.pending, []
            if not batch:
                continue
            with self.db:
                self.db.executemany("INSERT INTO readings VALUES (?, ?, ?)", [b[1:] for b in batch])
            for mid, *_ in batch:
                self.c.ack(mid, 1)
            with self.lock:
                self.unsent.extend(b[1:] for b in batch)

    def forwarder(self) -> None:
        """Every 10 s, the rows committed since the last post, as line protocol."""
        url = f"{self.influx['url']}/write?db={self.influx['database']}&precision=ms"
        while True:
            time.sleep(10)
            with self.lock:
                rows, self.unsent = self.unsent, []
            if rows:
                body = "\n".join(f"reading,sensor={s} temperature={v} {int(t * 1000)}" for s, t, v in rows)
                self.http.request("POST", url, body=body.encode())


def app(floor: Floor) -> fastapi.FastAPI:
    """The three paths bench.memory fetches while it runs."""
    api = fastapi.FastAPI()

    @api.get("/", response_class=HTMLResponse)
    def page() -> str:
        return "<!doctype html><title>floor</title><p>" + str(len(floor.by_topic))

    @api.get("/api/v1/zones")
    def zones() -> list[dict[str, Any]]:
        return [{"id": "z0", "sensors": len(floor.by_topic)}]

    @api.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return f"pending {len(floor.pending)}\n"

    return api


async def main(cfg_path: str) -> None:
    cfg = _Config.model_validate(json.loads(Path(cfg_path).read_text(encoding="utf-8")))  # noqa: ASYNC240
    floor = Floor(cfg)
    for work in (floor.committer, floor.forwarder):
        threading.Thread(target=work, daemon=True).start()
    floor.c.connect(cfg.mqtt.host, cfg.mqtt.port, clean_start=False)
    floor.c.loop_start()
    server = uvicorn.Server(uvicorn.Config(app(floor), host=cfg.api["host"], port=cfg.api["port"],
                                           log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
