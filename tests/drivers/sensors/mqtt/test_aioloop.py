"""The driver's client runs in the event loop (aioloop.py), so what paho's thread did is ours: keepalive on
an idle connection, and retrying a broker that is not there yet. Real Mosquitto."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from drivers.sensors.mqtt import MqttDriver
from tests.drivers.sensors.mqtt.conftest import Broker, RestartableBroker
from tests.drivers.sensors.mqtt.test_driver import Recorder, config, driving, uid
from tests.peers import until

pytestmark = pytest.mark.peer


@pytest.mark.asyncio
async def test_an_idle_connection_is_kept_alive_by_pings(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}", "keepalive": 5},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    rec = Recorder()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        # the broker drops a client silent for 1.5 x keepalive (7.5 s): two pings mean it stayed
        await until(lambda: broker.log.read_text(errors="replace").count(f"Received PINGREQ from t-{u}") >= 2,
                    "two keepalive pings", timeout=20)
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 4.5}')
        await until(lambda: rec.samples, "a message on the kept connection")
        assert driver.counters["connection_lost"] == 0
        assert all(t.name != f"paho-mqtt-client-t-{u}" for t in threading.enumerate())  # no network thread


@pytest.mark.asyncio
async def test_a_broker_that_is_not_up_yet_is_reported_then_reached(
        restartable_broker: RestartableBroker, tmp_path: Path) -> None:
    b, u = restartable_broker, uid()
    b.stop()
    cfg = config(tmp_path, {"port": b.port, "client_id": f"t-{u}"},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    rec = Recorder()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver) as task:
        await until(lambda: driver.state.startswith("cannot reach broker"), "the unreachable broker reported")
        assert rec.online and not rec.online[-1][1]
        b.start()
        await until(lambda: driver.connected, "the connection once the broker is up")
        b.publish(f"zigbee2mqtt/{u}", '{"temperature": 3.5}')
        await until(lambda: rec.samples, "a message")
        assert not task.done() and driver.counters["connection_unreachable"] >= 1
