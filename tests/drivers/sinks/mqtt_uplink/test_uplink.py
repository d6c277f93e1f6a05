"""`type: mqtt_uplink` against a real Mosquitto: topics and payloads, retained status, Last Will of a
killed box, and the forwarder carrying a backlog across a broker restart."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from daemon.forwarding.forwarder import Forwarder, stop_all
from daemon.ports.clock import ManualClock
from daemon.ports.errors import SinkError
from daemon.ports.model import Quality, Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from drivers.sinks.mqtt_uplink import SAMPLE_YAML, MqttUplinkConfig, MqttUplinkSink
from tests.peers import Mosquitto, wait_until

pytestmark = [pytest.mark.peer]
ROOT = Path(__file__).resolve().parents[4]
T0 = 1_763_800_000.123


class Subscriber:
    """Collects every message under coldchain/# (retained ones included) in a paho network thread."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{random.random()}")
        self.client.on_connect = lambda c, *_: c.subscribe("coldchain/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.port)
    yield sub
    sub.close()


def uplink(port: int, **kw: Any) -> MqttUplinkSink:
    cfg = MqttUplinkConfig.model_validate({"id": "region", "type": "mqtt_uplink", "host": "127.0.0.1", "port": port,
                                           "timeout": 5, **kw})
    return MqttUplinkSink(cfg, {"room1": "kiwifruit"})


def readings(n: int, t0: float = T0) -> list[Reading]:
    return [Reading("c1", "room1", "s1", Quantity.TEMPERATURE, round(0.5 + i / 1000, 4), round(t0 + 60 * i, 3),
                    id=i + 1) for i in range(n)]


def test_sample_validates() -> None:
    for entry in yaml.safe_load(SAMPLE_YAML):
        MqttUplinkConfig.model_validate(entry)


def test_topic_prefix_rejects_wildcards() -> None:
    with pytest.raises(ValueError, match="topic_prefix"):
        MqttUplinkConfig.model_validate({"id": "r", "type": "mqtt_uplink", "host": "h", "topic_prefix": "a/#"})


@pytest.mark.asyncio
async def test_readings_and_status_published(mosquitto: Mosquitto, subscriber: Subscriber) -> None:
    sink = uplink(mosquitto.port)
    fault = Reading("c1", "room1", "s1", Quantity.HUMIDITY, None, T0, Quality.FAULT, "no value", id=99)
    await sink.write([*readings(20), fault])
    wait_until(lambda: len(subscriber.on("coldchain/c1/readings/room1/s1/temperature")) == 20, 30, "20 readings")
    got = subscriber.on("coldchain/c1/readings/room1/s1/temperature")
    assert [(p["ts"], p["value"], p["id"]) for p in got] == [(round(r.ts * 1000), r.value, r.id) for r in readings(20)]
    assert got[0]["unit"] == "°C" and got[0]["quality"] == "good" and got[0]["commodity"] == "kiwifruit"
    wait_until(lambda: subscriber.on("coldchain/c1/readings/room1/s1/humidity"), 30, "the fault")
    assert subscriber.on("coldchain/c1/readings/room1/s1/humidity")[0] | {"ts": 0} == {
        "ts": 0, "value": None, "unit": "%RH", "quality": "fault", "note": "no value", "id": 99,
        "commodity": "kiwifruit"}
    wait_until(lambda: subscriber.on("coldchain/c1/status"), 30, "the retained status")  # its own message
    assert subscriber.on("coldchain/c1/status")[-1]["state"] == "online"
    await sink.close()
    wait_until(lambda: subscriber.on("coldchain/c1/status")[-1]["state"] == "offline", 30, "clean offline")


KILLED_BOX = """
import asyncio, sys
from daemon.ports.model import Quantity, Reading
from drivers.sinks.mqtt_uplink import MqttUplinkConfig, MqttUplinkSink
cfg = MqttUplinkConfig(id="region", type="mqtt_uplink", host="127.0.0.1", port=int(sys.argv[1]), keepalive=5)
sink = MqttUplinkSink(cfg, {})
asyncio.run(sink.write([Reading("dead", "z", "s", Quantity.TEMPERATURE, 1.0, 1_763_800_000.0, id=1)]))
print("sent", flush=True)
sys.stdin.read()
"""


def test_last_will_marks_a_killed_box_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BOX, str(mosquitto.port)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"sent"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    late = Subscriber(mosquitto.port)  # a dashboard that connects afterwards sees the retained Will
    try:
        wait_until(lambda: late.on("coldchain/dead/status"), 15, "retained status")
        assert late.on("coldchain/dead/status")[-1]["state"] == "offline"
    finally:
        late.close()


@pytest.mark.asyncio
async def test_broker_down_is_retryable_and_backlog_arrives(mosquitto: Mosquitto, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    stored = journal.readings.append([Reading(r.site, r.zone, r.sensor, r.quantity, r.value, r.ts) for r in readings(50)])
    await asyncio.to_thread(mosquitto.stop)
    with pytest.raises(SinkError) as err:
        await uplink(mosquitto.port).write(stored[:1])
    assert err.value.retryable and "mqtt_uplink:region" in str(err.value)
    sink = uplink(mosquitto.port, batch_size=20)
    gate = asyncio.Event()  # holds the forwarder while the test's subscriber connects (no retained readings)
    gate.set()
    write = sink.write

    async def gated(rs: Any) -> None:
        await gate.wait()
        await write(rs)

    sink.write = gated  # type: ignore[method-assign]
    f = Forwarder(sink, journal, ManualClock(T0), Stats(), poll_interval=0.05, backoff_initial=0.05,
                  backoff_max=0.5, rng=random.Random(5))
    task = asyncio.create_task(f.run())
    try:
        await asyncio.to_thread(wait_until, lambda: f.state.failures >= 2, 30, "failed attempts")
        gate.clear()
        assert journal.cursors.get("sink:region") == 0
        await asyncio.to_thread(mosquitto.start)
        sub = Subscriber(mosquitto.port)
        await asyncio.to_thread(sub.subscribed.wait, 10)
        gate.set()
        await asyncio.to_thread(wait_until, lambda: journal.cursors.get("sink:region") == 50, 30, "backlog sent")
    finally:
        await stop_all([f], [task])
        await f.sink.close()
    try:
        topic = "coldchain/c1/readings/room1/s1/temperature"
        await asyncio.to_thread(wait_until, lambda: {p["id"] for p in sub.on(topic)} == set(range(1, 51)), 10,
                                "all 50 at the subscriber")
    finally:
        sub.close()
