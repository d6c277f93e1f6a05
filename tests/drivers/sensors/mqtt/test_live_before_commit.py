"""With a long window (`storage.flush_interval`, 60 s by default since session 12 and here, so the timer cannot
be what commits during the test), an MQTT reading is on the live view (`GET /api/v1/zones`, which the page polls)
when it arrives, before its commit; a reading that changes an alarm is committed, and the alarm stored, at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config.schema import AppConfig, StorageConfig
from daemon.ports.broker import MqttConfig
from tests.conftest import make_config
from tests.drivers.sensors.mqtt.conftest import Broker
from tests.drivers.sensors.mqtt.test_driver import journal_values, mqtt_driver, running, uid, until_api
from tests.peers import until

pytestmark = pytest.mark.peer


def test_the_defaults_are_a_60_s_window_on_mqtt_5() -> None:
    assert StorageConfig().flush_interval == 60.0
    assert MqttConfig.model_validate({}).protocol == "5" and MqttConfig.model_validate({}).receive_maximum == 1000


def window_config(tmp_path: Path, broker: Broker, u: str) -> AppConfig:
    doc: dict[str, Any] = {
        "site": {"id": "t1", "name": "测试冷库", "timezone": "Asia/Shanghai"},
        "storage": {"journal": "journal.db", "flush_interval": 60},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": f"t-{u}", "reconnect_min": 1,
                 "reconnect_max": 2},
        "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin",
                   "alarms": {"temperature": {"delay": 0}}}],
        "sensors": [{"id": "t1", "zone": "z1", "type": "mqtt", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}],
        "api": {"enabled": True, "port": 0},
    }
    return make_config(tmp_path, yaml.safe_dump(doc, allow_unicode=True))


@pytest.mark.asyncio
async def test_a_reading_is_live_before_its_commit_and_an_alarm_reading_is_committed_at_once(
        broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = window_config(tmp_path, broker, u)
    async with running(cfg) as d:
        drv = mqtt_driver(d)
        await until(lambda: drv.connected, "connection")
        assert drv.protocol == "5"
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 6.0}')
        await until_api(d, "t1", (6.0, "°C"))
        assert journal_values(d, "t1") == []  # live, not yet committed: the window is 60 s
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 12.0}')  # above mandarin's 8 °C, no delay
        await until(lambda: journal_values(d, "t1") == [6.0, 12.0], "both readings committed at once", timeout=20)
        await until(lambda: [a.state for a in d.journal.alerts.find()] == ["firing"], "the alarm", timeout=20)
        await until_api(d, "t1", (12.0, "°C"))


@pytest.mark.asyncio
async def test_many_messages_inside_one_window_do_not_hold_back_the_live_view_or_an_alarm(
        broker: Broker, tmp_path: Path) -> None:
    """At a sensor rate each message comes alone, one batch each; the driver hands batches on without waiting for
    their commit, and more of them than the commits' queue held (8 before session 11) must not wait for the
    window's commit before they are screened and shown."""
    u = uid()
    cfg = window_config(tmp_path, broker, u)
    async with running(cfg) as d:
        drv = mqtt_driver(d)
        await until(lambda: drv.connected, "connection")
        for i in range(25):  # one mosquitto_pub each, the loop running between: separate messages and batches
            await asyncio.to_thread(broker.publish, f"zigbee2mqtt/{u}", json.dumps({"temperature": 5.0 + i / 10}))
            await asyncio.sleep(0.02)
        await until_api(d, "t1", (7.4, "°C"))
        assert journal_values(d, "t1") == []  # every one live, none committed: the window is 60 s
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 12.0}')
        await until(lambda: len(journal_values(d, "t1")) == 26, "all 26 readings committed at once", timeout=20)
        await until(lambda: [a.state for a in d.journal.alerts.find()] == ["firing"], "the alarm", timeout=20)
