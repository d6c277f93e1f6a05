"""Battery and signal through a real Mosquitto: a RuuviTag (millivolts, via a Ruuvi Gateway) and a Zigbee2MQTT
device (%) reach the journal at most once an hour or on a change, a low battery warns the installer alone
(zh-CN), the room stays "ok" on the zones API with the battery shown on its sensor, and the doctor warns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from daemon.app.runtime import Daemon
from daemon.config.schema import AppConfig
from tests.conftest import make_config
from tests.drivers.sensors.ble.peers import doctor_while_publishing
from tests.drivers.sensors.mqtt.conftest import Broker
from tests.drivers.sensors.mqtt.test_driver import journal_values, mqtt_driver, running, uid
from tests.drivers.sensors.ruuvi.test_decode import TAG, gateway
from tests.drivers.sensors.ruuvi.vectors import VECTORS
from tests.peers import until

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]

# Ruuvi's "5 valid" vector with the mandarin room's climate (6.0 °C: 04B0, 92 %RH: 8FC0) and its power field
# (bytes 13-14, AC36: 2977 mV, +4 dBm) set to 2100 mV, +4 dBm
WEAK_TAG = "0504B08FC0" + VECTORS["5 valid"][0][10:].replace("AC36", f"{((2100 - 1600) << 5) | 22:04X}")


def config(tmp_path: Path, broker: Broker, u: str) -> AppConfig:
    doc: dict[str, Any] = {
        "site": {"id": "t1", "name": "测试冷库", "timezone": "Asia/Shanghai"},
        "storage": {"journal": "journal.db", "flush_interval": 0.05},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": f"t-{u}", "reconnect_min": 1},
        "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin"}],
        "sensors": [
            {"id": "tag", "zone": "z1", "type": "mqtt", "format": "ruuvi", "topic": f"ruuvi/{u}-gw/{TAG}",
             "options": {"mac": TAG, "min_interval": 0}},
            {"id": "zb", "zone": "z1", "type": "mqtt", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}-th",
             "battery_low": {"percent": 15}},
        ],
        "notifiers": [{"id": "out", "type": "console"}],
        "contacts": [{"id": "zhang", "name": "张师傅", "phone": "+8613800138000"},
                     {"id": "li", "name": "李工", "phone": "+8613900139000", "device_alarms": True}],
        "api": {"enabled": True, "port": 0},
    }
    return make_config(tmp_path, yaml.safe_dump(doc, allow_unicode=True))


async def sensors(d: Daemon) -> tuple[str, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}") as http:
        (zone,) = (await http.get("/api/v1/zones", params={"lang": "en"})).json()["zones"]
    return zone["state"], {s["id"]: s for s in zone["sensors"]}


async def test_low_battery_warns_the_installer_and_values_are_thinned(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    z2m = f"zigbee2mqtt/{u}-th"
    async with running(config(tmp_path, broker, u)) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        broker.publish(f"ruuvi/{u}-gw/{TAG}", gateway(WEAK_TAG, rssi=-83))
        for battery in (40, 40, 12):  # the repeat within the hour is not stored; 12 % is a change
            broker.publish(z2m, json.dumps({"temperature": 6.1, "humidity": 92, "battery": battery,
                                            "linkquality": 120}))
        await until(lambda: len(journal_values(d, "zb")) == 3, "three z2m readings")
        assert journal_values(d, "zb", "battery") == [40.0, 12.0]
        assert journal_values(d, "zb", "link_quality") == [120.0]
        assert journal_values(d, "tag", "battery_voltage") == [pytest.approx(2.1)]
        assert journal_values(d, "tag", "signal") == [-83.0]
        assert d.stats.get("device_readings_thinned") == 3  # the second 40 %, and the unchanged LQI twice

        await until(lambda: len([a for a in d.journal.alerts.find() if a.state == "firing"]) == 2, "two warnings")
        alarms = {a.sensor: a for a in d.journal.alerts.find()}
        assert sorted((s, a.kind, a.value, a.limit_value) for s, a in alarms.items()) == [
            ("tag", "battery_low", pytest.approx(2.1), 2.5), ("zb", "battery_low", 12.0, 15.0)]
        await until(lambda: len(d.journal.outbox.find()) == 2, "the installer's two messages")
        told = d.journal.outbox.find()
        assert {m.contact for m in told} == {"li"}  # not the staff: a room alarm would page zhang too
        assert any("传感器zb电池电量低：电量12%（低于15%告警）" in m.text for m in told), [m.text for m in told]

        state, by_id = await sensors(d)
        assert state == "ok"  # a device alarm does not put the room in alarm
        assert by_id["zb"]["device"]["battery"]["value"] == 12.0 and by_id["zb"]["device"]["battery_low"] is True
        assert by_id["tag"]["device"]["signal"] == {"value": -83.0, "unit": "dBm",
                                                    "ts": by_id["tag"]["device"]["signal"]["ts"]}
        assert by_id["tag"]["device"]["battery_voltage"]["unit"] == "V" and by_id["tag"]["online"] is True

        broker.publish(z2m, json.dumps({"temperature": 6.2, "humidity": 92, "battery": 100, "linkquality": 120}))
        await until(lambda: alarms_of(d, "zb") == ["resolved"], "the new battery clears the warning")


def alarms_of(d: Daemon, sensor: str) -> list[str]:
    return [a.state for a in d.journal.alerts.find() if a.sensor == sensor]


async def test_doctor_warns_of_a_low_battery(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, broker, u)
    text = await doctor_while_publishing(broker, cfg, [
        (f"ruuvi/{u}-gw/{TAG}", gateway(WEAK_TAG)),
        (f"zigbee2mqtt/{u}-th", json.dumps({"temperature": 6.1, "battery": 80, "linkquality": 120}))])
    assert "sensor tag (1号库): battery low, 2.1 V (warning below 2.5 V): change it" in text, text
    assert "sensor zb (1号库): battery low" not in text and "battery 80" in text, text


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # the module's asyncio mark does not apply here
def test_a_battery_number_beyond_a_float_is_no_sample_not_a_crash() -> None:
    """JSON allows integers of any size; float() of one raises OverflowError (found by the format fuzz test)."""
    from drivers.sensors.mqtt.formats import device_sample

    assert device_sample("s1", "battery", 10**400, "%") == []
    assert device_sample("s1", "battery", float("nan"), "%") == []
    assert device_sample("s1", "battery", 87, "%")[0].value == 87.0


async def test_tasmota_and_esphome_report_battery_and_wifi_signal(broker: Broker, tmp_path: Path) -> None:
    """A BLE thermometer through Tasmota (`Battery` in its SENSOR object), Tasmota's own Wi-Fi (`tele/<t>/STATE`)
    and an ESPHome node's battery and Wi-Fi signal sensors (`device_object_ids`) reach the journal through a real
    Mosquitto, as device readings beside the room's."""
    u = uid()
    doc_sensors = [
        {"id": "tas", "zone": "z1", "type": "mqtt", "format": "tasmota", "topic": f"{u}-tas",
         "sensor_key": "LYWSD03-52680f"},
        {"id": "esp", "zone": "z1", "type": "mqtt", "format": "esphome", "topic": f"{u}-esp",
         "object_ids": {"temperature": "room_t"},
         "device_object_ids": {"battery": "battery_level", "signal": "wifi_signal"}},
    ]
    site = {"id": "t1", "name": "测试冷库", "timezone": "Asia/Shanghai"}
    text = yaml.safe_dump({"site": site, "storage": {"journal": "journal.db", "flush_interval": 0.05},
                           "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": f"t-{u}",
                                    "reconnect_min": 1},
                           "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin"}],
                           "sensors": doc_sensors, "api": {"enabled": True, "port": 0}}, allow_unicode=True)
    async with running(make_config(tmp_path, text)) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        broker.publish(f"tele/{u}-tas/SENSOR", '{"Time":"2020-03-24T12:47:51","LYWSD03-52680f":{"Temperature":6.1,'
                       '"Humidity":90.0,"DewPoint":4.5,"Battery":64},"TempUnit":"C"}')
        broker.publish(f"tele/{u}-tas/STATE", '{"Time":"2020-03-24T12:47:51","Wifi":{"RSSI":62,"Signal":-69}}')
        broker.publish(f"{u}-esp/sensor/room_t/state", "5.9")
        broker.publish(f"{u}-esp/sensor/battery_level/state", "87")
        broker.publish(f"{u}-esp/sensor/wifi_signal/state", "-71")
        await until(lambda: journal_values(d, "esp", "signal"), "the ESPHome node's signal")
        await until(lambda: journal_values(d, "tas", "signal"), "the Tasmota's signal")
        assert journal_values(d, "tas", "battery") == [64.0] and journal_values(d, "tas", "signal") == [-69.0]
        assert journal_values(d, "tas") == [6.1]
        assert journal_values(d, "esp", "battery") == [87.0] and journal_values(d, "esp", "signal") == [-71.0]
        assert journal_values(d, "esp") == [5.9]
        _, by_id = await sensors(d)
        assert by_id["esp"]["device"]["battery"]["value"] == 87.0 and by_id["tas"]["device"]["signal"]["unit"] == "dBm"
