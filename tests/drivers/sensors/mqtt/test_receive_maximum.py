"""MQTT 5 Receive Maximum: the daemon, not the broker's max_inflight_messages, says how many QoS 1 messages may
wait for its commit. Real Mosquitto with its stock in-flight window (20); the journal side never commits, so
nothing is acknowledged and what arrives is exactly what the broker let through.

A commit window (`storage.flush_interval`) longer than 20 messages' worth used to be throttled by the broker:
20 messages per window, whatever the sensors sent (docs/robustness.md has the table measured with
`python -m bench.inflight`)."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import drivers.sensors.mqtt as mqtt_driver
from drivers.sensors.mqtt import MqttDriver
from tests.drivers.sensors.mqtt.test_driver import config, driving, uid
from tests.drivers.sensors.mqtt.test_redelivery import Commits
from tests.peers import until

from .conftest import Broker

pytestmark = pytest.mark.asyncio
SENT = 150
STOCK_INFLIGHT = 20  # mosquitto's max_inflight_messages when its config does not set it


def publish(broker: Broker, topic: str, n: int, base: float = 0.0) -> None:
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"rm-pub-{uid()}")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        for info in [pub.publish(topic, f'{{"temperature": {round(base + i / 1000, 3)}}}', qos=1) for i in range(n)]:
            info.wait_for_publish(30)
    finally:
        pub.disconnect()
        pub.loop_stop()


async def unacked(broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mqtt: dict[str, object],
                  expect: int) -> int:
    """Messages the broker sends a driver that acknowledges none, once `expect` of them are in (or 3 s more)."""
    monkeypatch.setattr(mqtt_driver, "INFLIGHT_BATCHES", 10_000)  # the driver itself must not be the limit
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"rm-{u}", **mqtt},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    held = Commits(hold=True)
    driver = MqttDriver(cfg.sensors, held.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        publish(broker, f"zigbee2mqtt/{u}", SENT)
        await until(lambda: len(held.samples) >= expect, f"{expect} messages")
        with pytest.raises(AssertionError):  # and no more than that come, unacknowledged
            await until(lambda: len(held.samples) > expect, "more messages", timeout=3)
    return len(held.samples)


async def test_receive_maximum_lets_a_whole_window_in(broker: Broker, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    got = await unacked(broker, tmp_path, monkeypatch, {"protocol": "5", "receive_maximum": 100}, 100)
    assert got == 100  # the daemon's figure, five times the broker's own


async def test_receive_maximum_above_what_is_sent(broker: Broker, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert await unacked(broker, tmp_path, monkeypatch, {"protocol": "5"}, SENT) == SENT  # default 1000


async def test_without_it_the_broker_window_rules(broker: Broker, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    got = await unacked(broker, tmp_path, monkeypatch, {"protocol": "5", "receive_maximum": None}, STOCK_INFLIGHT)
    assert got == STOCK_INFLIGHT
    assert await unacked(broker, tmp_path, monkeypatch, {"protocol": "3.1.1"}, STOCK_INFLIGHT) == STOCK_INFLIGHT
