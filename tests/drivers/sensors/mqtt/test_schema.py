"""MQTT sensor config, topic derivation and registration: no broker needed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from pydantic import ValidationError

from daemon.ports.clock import Clock
from daemon.ports.errors import ConfigError
from daemon.ports.sources import DriverContext
from drivers.registry import SENSORS
from drivers.sensors.mqtt import SAMPLE_YAML, MqttDriver, MqttSensorConfig
from drivers.sensors.mqtt.formats import BadPayload
from drivers.sensors.mqtt.topics import (
    availability_topic,
    covers,
    data_topics,
    discovery_filters,
    minimal,
    parse_online,
)
from tests.conftest import make_config


def make(**options: Any) -> MqttSensorConfig:
    base = {"id": "s1", "zone": "z1", "type": "mqtt", "format": "tasmota", "topic": "coldroom1"}
    return MqttSensorConfig.model_validate({**base, **options})


def test_registered_and_one_instance_for_all_sensors() -> None:
    assert SENSORS["mqtt"] is MqttDriver and MqttDriver.Config is MqttSensorConfig
    a, b = make(id="a"), make(id="b", format="zigbee2mqtt", topic="zigbee2mqtt/x")
    assert MqttDriver.group([a, b]) == [[a, b]]
    assert MqttDriver.group([]) == []


def test_sample_yaml_validates() -> None:
    items = yaml.safe_load(SAMPLE_YAML)
    configs = [MqttSensorConfig.model_validate(i) for i in items]
    assert {c.format for c in configs} == {"tasmota", "zigbee2mqtt", "shelly_gen1", "shelly_gen2", "esphome",
                                           "homeassistant", "json"}
    first = configs[0]
    assert first == make(id=first.id, zone=first.zone, topic=first.topic, sensor_key="AM2301")


@pytest.mark.parametrize("options", [
    {"format": "modbus"},
    {"topic": "tele/+/SENSOR"},
    {"topic": "tele/#"},
    {"topic": ""},
    {"format": "zigbee2mqtt", "ds18b20_id": "28FF"},
    {"format": "esphome", "sensor_key": "AM2301"},
    {"sensor_key": "AM2301", "ds18b20_id": "28FF"},
    {"format": "json"},
    {"format": "json", "values": {"pressure": "p"}},
    {"format": "esphome", "trust_device_time": True},
    {"format": "json", "values": {"temperature": "t"}, "trust_device_time": True},
    {"format": "zigbee2mqtt", "unit": "F"},
    {"unit": "R"},
    {"device_timezone": "Mars/Olympus"},
    {"format": "json", "values": {"temperature": "t"}, "timestamp": {"path": "ts", "format": "unix"}},
    {"format": "esphome", "quantities": ["humidity"]},
    {"qos": 2},
])
def test_invalid_options_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make(**options)


def test_config_errors_name_file_line_and_key(tmp_path: Path) -> None:
    text = """
    site: {id: t1, name: 测试冷库}
    mqtt: {host: 127.0.0.1, protocl: "5"}
    zones:
      - {id: z1, name: 1号库, commodity: mandarin}
    sensors:
      - {id: s1, zone: z1, type: mqtt, format: tasmta, topic: coldroom1}
    """
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, text)
    problems = "\n".join(err.value.problems)
    assert "config.yaml:7: sensors[0].format" in problems and "tasmota" in problems
    assert "mqtt.protocl: unknown key 'protocl'; did you mean 'protocol'?" in problems


@pytest.mark.parametrize(("options", "topics", "avail", "discover"), [
    ({}, ["tele/coldroom1/SENSOR", "tele/coldroom1/STATE"], "tele/coldroom1/LWT", ["tele/+/SENSOR"]),
    ({"topic": "tele/room2/SENSOR"}, ["tele/room2/SENSOR", "tele/room2/STATE"], "tele/room2/LWT", ["tele/+/SENSOR"]),
    ({"format": "zigbee2mqtt", "topic": "zigbee2mqtt/room_1"}, ["zigbee2mqtt/room_1"],
     "zigbee2mqtt/room_1/availability", ["zigbee2mqtt/+"]),
    ({"format": "shelly_gen1", "topic": "shellies/shellyht-AB"},
     ["shellies/shellyht-AB/sensor/temperature", "shellies/shellyht-AB/sensor/humidity",
      "shellies/shellyht-AB/sensor/error"], None, ["shellies/+/sensor/+"]),
    ({"format": "shelly_gen2", "topic": "shellyplusht-b8"},
     ["shellyplusht-b8/events/rpc", "shellyplusht-b8/status/temperature:0", "shellyplusht-b8/status/humidity:0"],
     "shellyplusht-b8/online", ["+/events/rpc"]),
    ({"format": "esphome", "topic": "coldroom1", "object_ids": {"temperature": "t", "humidity": "h"}},
     ["coldroom1/sensor/t/state", "coldroom1/sensor/h/state"], "coldroom1/status", ["+/sensor/+/state"]),
    ({"format": "homeassistant", "topic": "homeassistant/sensor/bed/state"}, ["homeassistant/sensor/bed/state"],
     None, ["homeassistant/sensor/+/state"]),
    ({"format": "json", "topic": "a/b", "values": {"temperature": "t"}, "availability_topic": "a/b/up"},
     ["a/b"], "a/b/up", ["a/+"]),
    ({"availability": False}, ["tele/coldroom1/SENSOR", "tele/coldroom1/STATE"], None, ["tele/+/SENSOR"]),
])
def test_topics(options: dict[str, Any], topics: list[str], avail: str | None, discover: list[str]) -> None:
    c = make(**options)
    assert (data_topics(c), availability_topic(c), discovery_filters(c)) == (topics, avail, discover)


def test_covers_and_minimal() -> None:
    assert covers("tele/+/SENSOR", "tele/a/SENSOR") and covers("a/#", "a/b/c") and covers("#", "x")
    assert not covers("tele/+/SENSOR", "tele/a/LWT") and not covers("a/b", "a/+") and not covers("a/+", "a/#")
    assert minimal(["a/b", "a/+", "a/+", "c/d"]) == ["a/+", "c/d"]


@pytest.mark.parametrize(("payload", "online"), [
    (b"Online", True), (b"Offline", False),  # Tasmota LWT
    (b'{"state":"online"}', True), (b'{"state": "offline"}', False),  # Zigbee2MQTT 1.x new / 2.x
    (b"online", True), (b"offline", False),  # z2m legacy, ESPHome, HA birth/will
    (b"true", True), (b"false", False),  # Shelly gen2 <id>/online
])
def test_parse_online(payload: bytes, online: bool) -> None:
    assert parse_online(payload) is online


@pytest.mark.parametrize("payload", [b"maybe", b'{"state": 1}', b"{", b"\xff"])
def test_parse_online_rejects(payload: bytes) -> None:
    with pytest.raises(BadPayload):
        parse_online(payload)


def test_subscriptions_exact_at_qos1_and_discovery_at_qos0(tmp_path: Path) -> None:
    text = """
    site: {id: t1, name: 测试冷库}
    mqtt: {port: 1884}
    zones:
      - {id: z1, name: 1号库, commodity: mandarin}
    sensors:
      - {id: a, zone: z1, type: mqtt, format: tasmota, topic: room1, ds18b20_id: "01"}
      - {id: b, zone: z1, type: mqtt, format: tasmota, topic: room1, ds18b20_id: "02"}
      - {id: c, zone: z1, type: mqtt, format: zigbee2mqtt, topic: zigbee2mqtt/c}
    """
    cfg = make_config(tmp_path, text)
    ctx = DriverContext(Clock(), cast(Any, None), lambda *_: None, logging.getLogger("t"), cfg)
    d = MqttDriver(cfg.sensors, ctx)
    assert d.source == "mqtt:127.0.0.1:1884" and d.client_id == "coldchain-t1"
    assert [s.id for s in d.routes["tele/room1/SENSOR"]] == ["a", "b"]  # two DS18B20 on one Tasmota
    assert dict(d.subscriptions) == {"tele/room1/SENSOR": 1, "tele/room1/STATE": 1, "tele/room1/LWT": 1,
                                     "zigbee2mqtt/c": 1,
                                     "zigbee2mqtt/c/availability": 1, "tele/+/SENSOR": 0, "zigbee2mqtt/+": 0}
    info = d.describe()
    assert info["connected"] is False and info["unmapped"] == {} and set(info["sensors"]) == {"a", "b", "c"}
