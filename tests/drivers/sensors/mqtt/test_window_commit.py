"""A long commit window (`storage.flush_interval`) must not stall the broker: it sends a client only so many
unacknowledged QoS 1 messages (mosquitto's max_inflight_messages, 20 by default; MQTT 5 Receive Maximum), and
the daemon acknowledges only what it committed. So once 3/4 of that window awaits acknowledgement, the driver
asks for the commit at once. Real Mosquitto with its stock window, the real Daemon and journal.

Without it, 200 messages with a 60 s window take 10 windows (10 minutes): 20 per window, as
tests/drivers/sensors/mqtt/test_receive_maximum.py measures what the broker lets through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.sensors.mqtt import MqttDriver
from tests.drivers.sensors.mqtt.test_driver import config, journal_values, mqtt_driver, running, uid
from tests.drivers.sensors.mqtt.test_receive_maximum import publish
from tests.drivers.sensors.mqtt.test_redelivery import Commits
from tests.peers import until

from .conftest import Broker

pytestmark = pytest.mark.asyncio
SENT = 200


async def through(broker: Broker, tmp_path: Path, mqtt: dict[str, Any]) -> list[float | None]:
    """The journal's values once SENT messages, published with a 60 s commit window, are all in it."""
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"w-{u}", **mqtt},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    cfg.storage.flush_interval = 60.0  # the longest allowed: the whole test ends well inside one window
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        publish(broker, f"zigbee2mqtt/{u}", SENT, 6.0)  # inside the limits: no alarm commits early; waits for each PUBACK of the broker to the publisher
        await until(lambda: len(journal_values(d, "z2m")) == SENT, f"{SENT} readings committed", timeout=40)
        return journal_values(d, "z2m")


async def test_a_stock_broker_window_commits_early_on_mqtt_311(broker: Broker, tmp_path: Path) -> None:
    values = await through(broker, tmp_path, {"protocol": "3.1.1"})
    assert values == [round(6.0 + i / 1000, 3) for i in range(SENT)]  # all, in order, none twice


async def test_the_receive_maximum_window_commits_early_on_mqtt_5(broker: Broker, tmp_path: Path) -> None:
    values = await through(broker, tmp_path, {"protocol": "5", "receive_maximum": 40})
    assert values == [round(6.0 + i / 1000, 3) for i in range(SENT)]


async def test_the_window_is_receive_maximum_or_the_broker_setting(tmp_path: Path) -> None:
    def hurry_at(mqtt: dict[str, Any]) -> int:
        cfg = config(tmp_path, {"port": 1, **mqtt}, [{"id": "z2m", "format": "zigbee2mqtt", "topic": "z/x"}])
        return MqttDriver(cfg.sensors, Commits().ctx(cfg))._hurry_at

    assert hurry_at({"protocol": "3.1.1"}) == 15  # 3/4 of mosquitto's default 20
    assert hurry_at({"protocol": "3.1.1", "broker_inflight": 1000}) == 750
    assert hurry_at({"protocol": "5"}) == 750  # receive_maximum 1000 by default
    assert hurry_at({"protocol": "5", "receive_maximum": None}) == 15  # then the broker's setting applies
    assert hurry_at({"protocol": "5", "receive_maximum": 1}) == 1


async def test_the_end_of_a_replayed_backlog_is_committed_without_waiting_out_the_window(
        broker: Broker, tmp_path: Path) -> None:
    """A restart's backlog, fewer messages than the early commit's 750: its tail used to wait out the 60 s window
    (the broker's queue unacknowledged, the history and the uplinks a minute behind). Once the replay marker
    returns, the driver commits it at once; without that the wait below gives up after 30 s."""
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"b-{u}"},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    cfg.storage.flush_interval = 60.0
    async with running(cfg) as d:  # the persistent session exists from here on
        await until(lambda: mqtt_driver(d).connected, "connection")
    publish(broker, f"zigbee2mqtt/{u}", 40, 6.0)  # queued by the broker while the daemon is away
    async with running(cfg) as d:
        drv = mqtt_driver(d)
        await until(lambda: len(journal_values(d, "z2m")) == 40, "the backlog committed", timeout=30)
        assert drv.counters["replayed_messages"] >= 40
        await until(lambda: drv._awaiting == 0, "the backlog acknowledged", timeout=30)  # the acker follows the commit
    assert journal_values(d, "z2m") == [round(6.0 + i / 1000, 3) for i in range(40)]
