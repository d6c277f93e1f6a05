"""`coldchain doctor` against a real Mosquitto: a sensor that publishes, an unmapped topic, a wrong password."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from daemon.app.doctor import run_doctor
from daemon.app.plugins import parse_config
from tests.drivers.sensors.mqtt.conftest import Broker

CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: {tmp}/journal.db}}
mqtt: {{host: 127.0.0.1, port: {port}{auth}}}
zones:
  - {{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}}
sensors:
  - {{id: plug, zone: z1, type: mqtt, format: tasmota, topic: coldroom1, sensor_key: AM2301}}
api: {{enabled: false}}
"""


def publish_for(broker: Broker, seconds: float) -> threading.Thread:
    def go() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for topic, payload in (("tele/coldroom1/SENSOR", '{"AM2301":{"Temperature":4.2,"Humidity":91.0},"TempUnit":"C"}'),
                                   ("tele/forgotten/SENSOR", '{"DS18B20":{"Id":"0305","Temperature":-19.5},"TempUnit":"C"}')):
                subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic, "-m", payload],
                               check=False, timeout=5)
            time.sleep(0.3)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.peer
@pytest.mark.asyncio
async def test_doctor_lists_answers_and_unmapped_topics(broker: Broker, tmp_path: Path) -> None:
    cfg = parse_config(CONFIG.format(tmp=tmp_path, port=broker.port, auth=""), "config.yaml")
    t = publish_for(broker, 4)
    rep = await run_doctor(cfg, "config.yaml", lang="en", seconds=3)
    t.join()
    text = rep.render()
    assert "✓ sensor plug (Room 1) answered: temperature 4.2, humidity 91.0" in text, text
    assert "! MQTT topic tele/forgotten/SENSOR publishes but no sensor is configured for it" in text, text


@pytest.mark.peer
@pytest.mark.asyncio
async def test_doctor_wrong_mqtt_password(auth_broker: Broker, tmp_path: Path) -> None:
    auth = ", username: " + str(auth_broker.username) + ", password: Zq9-not-the-password"
    cfg = parse_config(CONFIG.format(tmp=tmp_path, port=auth_broker.port, auth=auth), "config.yaml")
    rep = await run_doctor(cfg, "config.yaml", lang="en", seconds=2)
    text = rep.render()
    line = next(ln for ln in text.splitlines() if "sensor plug" in ln)
    assert line.startswith("✗") and "not authorized" in line.lower(), text
    assert "Zq9-not-the-password" not in text  # the password itself is never printed
