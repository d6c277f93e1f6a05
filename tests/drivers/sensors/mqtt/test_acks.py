"""A committed batch's PUBACKs go out as one packet: the same bytes paho sends one by one, and a real
Mosquitto takes every one of them (nothing comes back on the next session)."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from drivers.sensors.mqtt import MqttDriver
from drivers.sensors.mqtt.acks import ack_all, puback_bytes
from tests.drivers.sensors.mqtt.conftest import Broker
from tests.drivers.sensors.mqtt.test_driver import config, driving, uid
from tests.drivers.sensors.mqtt.test_redelivery import Commits
from tests.peers import until

pytestmark = pytest.mark.peer

MIDS = [1, 2, 127, 128, 255, 256, 4097, 65535]


@pytest.mark.parametrize("protocol", [paho.MQTTv311, paho.MQTTv5])
def test_batched_pubacks_are_the_bytes_paho_queues_one_by_one(protocol: int) -> None:
    one_by_one = paho.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    one_by_one.manual_ack_set(True)
    for mid in MIDS:
        one_by_one.ack(mid, 1)
    expected = b"".join(bytes(p["packet"]) for p in one_by_one._out_packet)
    batched = paho.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    ack_all(batched, MIDS)
    assert [bytes(p["packet"]) for p in batched._out_packet] == [expected] == [puback_bytes(MIDS)]
    ack_all(batched, [])
    assert len(batched._out_packet) == 1  # nothing queued for an empty batch


def _publish(port: int, topic: str, values: list[float]) -> None:
    """QoS 1 messages the broker queues for the driver's session while it is away."""
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uid()}")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for info in [pub.publish(topic, json.dumps({"temperature": v}), qos=1) for v in values]:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_backlog_acknowledged_batch_by_batch_is_not_sent_again(
        broker: Broker, tmp_path: Path, protocol: str) -> None:
    u = uid()
    topic = f"zigbee2mqtt/{u}"
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}", "protocol": protocol},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": topic}])
    first = MqttDriver(cfg.sensors, Commits().ctx(cfg))
    async with driving(first):
        await until(lambda: first.connected, "the session made")
    values = [round(2 + k / 100, 2) for k in range(300)]  # more than the broker's window of 20: many batches
    _publish(broker.port, topic, values)
    taken = Commits()
    second = MqttDriver(cfg.sensors, taken.ctx(cfg))
    async with driving(second):
        await until(lambda: len(taken.samples) >= len(values), "the backlog")
        await second.settle()
    assert [s.value for s in taken.samples] == values
    last = Commits()  # no receipts: a copy the broker resent would be stored again and show here
    third = MqttDriver(cfg.sensors, last.ctx(cfg))
    async with driving(third):
        await until(lambda: third.connected, "the session resumed")
        _publish(broker.port, topic, [9.5])
        await until(lambda: last.samples, "the new message")
    assert [s.value for s in last.samples] == [9.5]
