"""One config with a sensor of each kind, all against real peers at once: Mosquitto (Tasmota and
Zigbee2MQTT payloads), pymodbus on a pty (XY-MD02), pymodbus as an RTU-over-TCP DTU, an ASCII device program on a
pty (READ protocol).
Readings reach the journal and `GET /api/v1/zones` with the right values and units."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from daemon.app.runtime import Daemon
from tests.conftest import make_config
from tests.drivers.sensors.conftest import PtyPair, until
from tests.drivers.sensors.modbus_rtu.test_peer import DEVICES, ModbusPeer
from tests.drivers.sensors.modbus_tcp.conftest import Gateway
from tests.drivers.sensors.mqtt.conftest import Broker, broker  # noqa: F401  (the session fixture)
from tests.drivers.sensors.serial_line.test_peer import ReadResponder

CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: journal.db, flush_interval: 1s, commit_interval: 1s}}  # the journal is read below
mqtt: {{host: 127.0.0.1, port: {mqtt_port}}}
zones:
  - {{id: z1, name: 1号库, commodity: mandarin}}
  - {{id: z2, name: 2号库, commodity: kiwifruit}}
sensors:
  - {{id: plug, zone: z1, type: mqtt, format: tasmota, topic: room1plug, sensor_key: AM2301}}
  - {{id: zig, zone: z1, type: mqtt, format: zigbee2mqtt, topic: zigbee2mqtt/room1_th}}
  - {{id: md02, zone: z2, type: modbus_rtu, port: {modbus}, address: 1, preset: xy_md02, interval: 1s}}
  - {{id: dtu, zone: z2, type: modbus_tcp, host: 127.0.0.1, tcp_port: {dtu}, framing: rtu, unit_id: 2, preset: xy_md02,
     interval: 1s}}
  - {{id: ascii, zone: z2, type: serial_line, port: {ascii}, preset: xy_md02_read, interval: 1s}}
api: {{enabled: true, host: 127.0.0.1, port: 0}}
"""


@pytest.fixture
def modbus(pty_pair: Callable[[str], PtyPair]) -> Iterator[PtyPair]:
    pair = pty_pair("ALLMB")
    peer = ModbusPeer(pair, DEVICES).start()
    yield pair
    peer.stop()


@pytest.fixture
def dtu() -> Iterator[Gateway]:
    gw = Gateway("rtu").start()
    yield gw
    gw.stop()


@pytest.fixture
def ascii_device(pty_pair: Callable[[str], PtyPair]) -> Iterator[PtyPair]:
    pair = pty_pair("ALLASC")
    dev = ReadResponder(pair.device)
    dev.start()
    yield pair
    dev.stop()


@pytest.mark.peer
@pytest.mark.asyncio
async def test_every_kind_of_sensor_in_one_daemon(
    broker: Broker, modbus: PtyPair, dtu: Gateway, ascii_device: PtyPair, tmp_path: Path  # noqa: F811
) -> None:
    cfg = make_config(tmp_path, CONFIG.format(mqtt_port=broker.port, modbus=modbus.client, dtu=dtu.port,
                                              ascii=ascii_device.client))
    d = Daemon(cfg)
    await d.start()

    def pub(topic: str, payload: str) -> None:
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", topic,
                        "-m", payload], check=True, timeout=5)

    try:
        want = {("plug", "temperature"), ("plug", "humidity"), ("zig", "temperature"), ("md02", "temperature"),
                ("md02", "humidity"), ("dtu", "temperature"), ("dtu", "humidity"), ("ascii", "temperature"), ("ascii", "humidity")}

        def have() -> set[tuple[str, str]]:
            return {(r.sensor, r.quantity.value) for r in d.journal.readings.latest() if r.good}

        for _ in range(100):
            await asyncio.to_thread(pub, "tele/room1plug/SENSOR",
                                    '{"Time":"2024-01-01T00:00:00","AM2301":{"Temperature":44.6,"Humidity":91.5},'
                                    '"TempUnit":"F"}')
            await asyncio.to_thread(pub, "zigbee2mqtt/room1_th", '{"temperature": 6.85, "linkquality": 97}')
            if want <= have():
                break
            await asyncio.sleep(0.2)
        await until(lambda: want <= have(), "a reading of every kind in the journal")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=10) as http:
            zones = {z["id"]: z for z in (await http.get("/api/v1/zones")).json()["zones"]}
    finally:
        await d.stop()
    sensors = {s["id"]: s for z in zones.values() for s in z["sensors"]}
    t = {sid: s["readings"].get("temperature") for sid, s in sensors.items()}
    assert t["plug"]["value"] == pytest.approx(7.0) and t["plug"]["unit"] == "°C"  # 44.6 °F
    assert sensors["plug"]["readings"]["humidity"]["value"] == 91.5
    assert sensors["plug"]["readings"]["humidity"]["unit"] == "%RH"
    assert t["zig"]["value"] == 6.85
    assert t["md02"]["value"] == 30.5 and sensors["md02"]["readings"]["humidity"]["value"] == 54.6
    assert t["dtu"]["value"] == -20.5 and sensors["dtu"]["readings"]["humidity"]["value"] == 54.6
    assert t["ascii"]["value"] == 16.02 and sensors["ascii"]["readings"]["humidity"]["value"] == 55.85
    assert all(s["online"] for s in sensors.values())
