"""Every payload of PROTOCOLS.md section 1 through its parser: the readings, or the fault, expected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from daemon.ports.model import Sample
from drivers.sensors.mqtt.formats import BadPayload, DeviceState, dig, parse, to_epoch
from drivers.sensors.mqtt.schema import MqttSensorConfig


def cfg(fmt: str, topic: str, **options: Any) -> MqttSensorConfig:
    return MqttSensorConfig.model_validate(
        {"id": "s1", "zone": "z1", "type": "mqtt", "format": fmt, "topic": topic, **options}
    )


def run(c: MqttSensorConfig, topic: str, payload: str | bytes, state: DeviceState | None = None) -> list[Sample]:
    raw = payload.encode() if isinstance(payload, str) else payload
    return parse(topic, raw, c, state or DeviceState(site_timezone="Asia/Shanghai"))


def values(samples: list[Sample]) -> dict[str, tuple[float | None, str]]:
    return {s.quantity: (s.value, s.unit) for s in samples}


def faults(samples: list[Sample]) -> dict[str, str]:
    return {s.quantity: s.fault for s in samples if s.fault}


# --------------------------------------------------------------------------- 1.1 Tasmota

T = "tele/coldroom1/SENSOR"
AM2301 = """{
  "Time": "2019-01-01T00:00:00",
  "AM2301": {"Temperature": 24.6, "Humidity": 58.2},
  "TempUnit": "C"
}"""
BME280 = """{"Time": "2019-11-03T19:34:28",
  "BME280": {"Temperature": 21.7, "Humidity": 66.6, "Pressure": 988.6},
  "PressureUnit": "hPa", "TempUnit": "C"}"""
DS18B20_3 = (
    '{"Time":"2021-01-02T09:09:44","DS18B20-1":{"Id":"00000566CC39","Temperature":13.3},'
    '"DS18B20-2":{"Id":"0000059352D4","Temperature":1.2},"DS18B20-3":{"Id":"000005937C90","Temperature":22.5},'
    '"TempUnit":"C"}'
)
DS18B20_1 = '{"Time":"2021-01-13T23:58:41","DS18B20":{"Id":"030597946B04","Temperature":20.9},"TempUnit":"C"}'
STATUS10_F = """{"StatusSNS": {"Time": "2018-02-07T20:16:19",
  "DHT11": {"Temperature": 78.8, "Humidity": 27.0},
  "SHT3X": {"Temperature": 74.8, "Humidity": 18.9}, "TempUnit": "F"}}"""
AHT1X = (
    '{"Time":"2020-01-01T00:00:00","AHT1X-0x38":{"Temperature":24.7,"Humidity":61.9,"DewPoint":16.8},'
    '"TempUnit":"C"}'
)
BLE = (
    '{"Time":"2020-03-24T12:47:51","LYWSD03-52680f":{"Temperature":21.1,"Humidity":58.0,"DewPoint":12.5,'
    '"Battery":100},"LYWSD02-a2fd09":{"Temperature":21.4,"Humidity":57.0,"DewPoint":12.5,"Battery":2},'
    '"MJ_HT_V1-d8799d":{"Temperature":21.4,"Humidity":54.6,"DewPoint":11.9},"TempUnit":"C"}'
)
AM2301_NULL = (
    '{"Time":"2021-01-01T00:00:00","AM2301":{"Temperature":null,"Humidity":null,"DewPoint":null},"TempUnit":"C"}'
)


def test_tasmota_am2301() -> None:
    assert values(run(cfg("tasmota", T), T, AM2301)) == {"temperature": (24.6, "C"), "humidity": (58.2, "%")}


def test_tasmota_bme280_with_key() -> None:
    out = run(cfg("tasmota", T, sensor_key="BME280"), T, BME280)
    assert values(out) == {"temperature": (21.7, "C"), "humidity": (66.6, "%")}
    assert all(s.ts is None for s in out)  # device time not trusted: the pipeline stamps receive time


@pytest.mark.parametrize(("ident", "temp"), [("00000566CC39", 13.3), ("0000059352D4", 1.2), ("000005937c90", 22.5)])
def test_tasmota_ds18b20_keyed_by_id(ident: str, temp: float) -> None:
    assert values(run(cfg("tasmota", T, ds18b20_id=ident), T, DS18B20_3)) == {"temperature": (temp, "C")}


def test_tasmota_ds18b20_missing_after_crc_error_is_fault_naming_topic() -> None:
    payload = json.loads(DS18B20_3)
    del payload["DS18B20-2"]  # a CRC error drops the key (Tasmota #11898)
    out = run(cfg("tasmota", T, ds18b20_id="0000059352D4"), T, json.dumps(payload))
    assert out[0].value is None and "0000059352D4" in faults(out)["temperature"] and T in faults(out)["temperature"]


def test_tasmota_single_ds18b20() -> None:
    topic = "tele/ds1820/SENSOR"
    out = run(cfg("tasmota", "ds1820", ds18b20_id="030597946B04"), topic, DS18B20_1)
    assert values(out) == {"temperature": (20.9, "C")}
    assert values(run(cfg("tasmota", "ds1820"), topic, DS18B20_1)) == {"temperature": (20.9, "C")}


@pytest.mark.parametrize(("key", "t", "h"), [("DHT11", 78.8, 27.0), ("SHT3X", 74.8, 18.9)])
def test_tasmota_fahrenheit_status10(key: str, t: float, h: float) -> None:
    out = run(cfg("tasmota", T, sensor_key=key), "stat/coldroom1/STATUS10", STATUS10_F)
    assert values(out) == {"temperature": (t, "F"), "humidity": (h, "%")}


def test_tasmota_two_sensors_without_key_is_bad_payload() -> None:
    with pytest.raises(BadPayload, match="sensor_key"):
        run(cfg("tasmota", T), T, STATUS10_F)


def test_tasmota_aht1x_addressed_key() -> None:
    out = run(cfg("tasmota", T, sensor_key="AHT1X-0x38"), T, AHT1X)
    assert values(out) == {"temperature": (24.7, "C"), "humidity": (61.9, "%")}


@pytest.mark.parametrize(
    ("key", "t", "h", "battery"),
    [("LYWSD03-52680f", 21.1, 58.0, 100), ("LYWSD02-a2fd09", 21.4, 57.0, 2), ("MJ_HT_V1-d8799d", 21.4, 54.6, None)]
)
def test_tasmota_ble_sensors(key: str, t: float, h: float, battery: int | None) -> None:
    """Tasmota's docs/Bluetooth.md: `Battery` in % beside the readings; the MJ_HT_V1 here sends none."""
    got = values(run(cfg("tasmota", T, sensor_key=key), T, BLE))
    assert got == {"temperature": (t, "C"), "humidity": (h, "%")} | ({} if battery is None else {"battery": (battery, "%")})


# tele/<t>/STATE every TelePeriod: Wifi.Signal in dBm, Wifi.RSSI a 0-100 quality (fields as Home Assistant's
# hatasmota reads them, status_sensor.py); the rest of the message trimmed
STATE = ('{"Time":"2024-05-01T10:00:00","Uptime":"0T01:00:00","Wifi":{"AP":1,"SSId":"coldroom","Channel":6,'
         '"Mode":"11n","RSSI":62,"Signal":-69,"LinkCount":1,"Downtime":"0T00:00:04"}}')


@pytest.mark.parametrize(("payload", "expected"), [
    (STATE, {"signal": (-69.0, "dBm")}),
    ('{"Time":"2024-05-01T10:00:00","Uptime":"0T01:00:00"}', {}),  # wired (Ethernet) Tasmota: no Wifi object
    ('{"Wifi":{"Signal":null}}', {}),
])
def test_tasmota_state_gives_the_wifi_signal_and_no_room_reading(payload: str, expected: dict[str, Any]) -> None:
    out = run(cfg("tasmota", "coldroom1", sensor_key="AM2301"), "tele/coldroom1/STATE", payload)
    assert values(out) == expected and faults(out) == {}


def test_tasmota_null_is_fault_naming_topic() -> None:
    out = run(cfg("tasmota", T, sensor_key="AM2301"), T, AM2301_NULL)
    assert [s.value for s in out] == [None, None]
    assert faults(out) == {"temperature": f"AM2301.Temperature is null on {T}",
                           "humidity": f"AM2301.Humidity is null on {T}"}


def test_tasmota_missing_sensor_key_is_fault() -> None:
    out = run(cfg("tasmota", T, sensor_key="SHT3X"), T, AM2301)
    assert faults(out) == {"temperature": f"SHT3X missing on {T}"}


def test_tasmota_sentinels_pass_raw_for_the_pipeline() -> None:
    out = run(cfg("tasmota", T), T, '{"DS18B20":{"Id":"1","Temperature":85.0},"TempUnit":"C"}')
    assert values(out) == {"temperature": (85.0, "C")} and not faults(out)


def test_tasmota_required_humidity_missing() -> None:
    out = run(cfg("tasmota", T, quantities=["temperature", "humidity"]), T, DS18B20_1)
    assert faults(out) == {"humidity": f"DS18B20.Humidity missing on {T}"}


def test_tasmota_local_time_trusted_only_when_configured() -> None:
    trusted = cfg("tasmota", T, trust_device_time=True, device_timezone="Asia/Shanghai")
    out = run(trusted, T, AM2301)
    assert out[0].ts == datetime(2018, 12, 31, 16, 0, tzinfo=UTC).timestamp()
    site = run(cfg("tasmota", T, trust_device_time=True), T, AM2301, DeviceState(site_timezone="UTC"))
    assert site[0].ts == datetime(2019, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b"[1,2]", b"42"])
def test_tasmota_garbage_is_bad_payload(payload: bytes) -> None:
    with pytest.raises(BadPayload):
        run(cfg("tasmota", T), T, payload)


# --------------------------------------------------------------------------- 1.2 Zigbee2MQTT

Z = "zigbee2mqtt/weather_sensor"


def test_z2m_guide_example() -> None:
    out = run(cfg("zigbee2mqtt", Z), Z, '{\n  "temperature": 27.34,\n  "humidity": 44.72\n}')
    assert values(out) == {"temperature": (27.34, "C"), "humidity": (44.72, "%")}


def test_z2m_negative_default_precision() -> None:
    assert values(run(cfg("zigbee2mqtt", Z), Z, '{"temperature": -0.85}')) == {"temperature": (-0.85, "C")}


def test_z2m_homeassistant_nulls() -> None:
    payload = '{"battery":null,"humidity":null,"linkquality":null,"pressure":null,"temperature":-0.85,"voltage":null}'
    out = run(cfg("zigbee2mqtt", Z), Z, payload)
    assert values(out) == {"temperature": (-0.85, "C"), "humidity": (None, "%")}
    assert faults(out) == {"humidity": f"humidity is null on {Z}"}


def test_z2m_pastebin_log_full_payload() -> None:
    topic = "zigbee2mqtt/0x00158d00036c1821"
    payload = '{"temperature":22.75,"linkquality":97,"humidity":55.43,"pressure":1000.6,"battery":86,"voltage":2995}'
    assert values(run(cfg("zigbee2mqtt", topic), topic, payload)) == {
        "temperature": (22.75, "C"), "humidity": (55.43, "%"),
        "battery": (86.0, "%"), "battery_voltage": (2995.0, "mV"), "link_quality": (97.0, "")}


def test_z2m_truncated_log_payload_is_bad() -> None:
    topic = "zigbee2mqtt/0x00158d00036c1821"
    with pytest.raises(BadPayload, match="not JSON"):
        run(cfg("zigbee2mqtt", topic), topic, '{"temperature":22.75,"linkquality":97,"humidity":55.43,"voltage":29')


def test_z2m_dropped_out_of_range_temperature_is_missing_key_fault() -> None:
    out = run(cfg("zigbee2mqtt", Z), Z, '{"battery":86,"humidity":55.4,"linkquality":97}')
    assert faults(out) == {"temperature": f"temperature missing on {Z}"}
    assert values(out)["humidity"] == (55.4, "%")


def test_z2m_last_seen_used_only_when_trusted() -> None:
    payload = '{"temperature": 3.1, "last_seen": "2026-01-01T08:00:00+08:00"}'
    assert run(cfg("zigbee2mqtt", Z), Z, payload)[0].ts is None
    out = run(cfg("zigbee2mqtt", Z, trust_device_time=True), Z, payload)
    assert out[0].ts == datetime(2026, 1, 1, tzinfo=UTC).timestamp()


# --------------------------------------------------------------------------- 1.3 Shelly H&T gen1

S1 = "shellies/shellyht-ABC123"


@pytest.mark.parametrize(("leaf", "payload", "expected"), [
    ("temperature", "21.5", {"temperature": (21.5, "C")}),
    ("humidity", "54.0", {"humidity": (54.0, "%")}),
    ("battery", "96", {"battery": (96.0, "%")}),
    ("error", "0", {}),
    ("act_reasons", '["sensor"]', {}),
    ("ext_power", "false", {}),
])
def test_shelly_gen1_topics(leaf: str, payload: str, expected: dict[str, Any]) -> None:
    assert values(run(cfg("shelly_gen1", S1), f"{S1}/sensor/{leaf}", payload)) == expected


def test_shelly_gen1_fahrenheit_from_config() -> None:
    out = run(cfg("shelly_gen1", S1, unit="F"), f"{S1}/sensor/temperature", "70.7")
    assert values(out) == {"temperature": (70.7, "F")}


def test_shelly_gen1_sentinel_999_passes_raw_for_the_pipeline() -> None:
    assert values(run(cfg("shelly_gen1", S1), f"{S1}/sensor/temperature", "999")) == {"temperature": (999.0, "C")}


def test_shelly_gen1_error_flag_is_fault() -> None:
    out = run(cfg("shelly_gen1", S1), f"{S1}/sensor/error", "1")
    assert faults(out) == {q: f"sensor error 1 on {S1}/sensor/error" for q in ("temperature", "humidity")}


def test_shelly_gen1_non_numeric_is_fault() -> None:
    out = run(cfg("shelly_gen1", S1), f"{S1}/sensor/temperature", "err")
    assert faults(out) == {"temperature": f"temperature is not a number ('err') on {S1}/sensor/temperature"}


# --------------------------------------------------------------------------- 1.4 Shelly Plus/Gen2/Gen3

S2 = "shellyplusht-b8d61a8b17cc"
RPC = f"{S2}/events/rpc"
FULL = json.dumps({
    "src": S2, "dst": f"{S2}/events", "method": "NotifyFullStatus",
    "params": {
        "ts": 1680962879.62,
        "devicepower:0": {"id": 0, "battery": {"V": 0.43, "percent": 0}, "external": {"present": True}},
        "humidity:0": {"id": 0, "rh": 42.2},
        "temperature:0": {"id": 0, "tC": 19.8, "tF": 67.6},
        "sys": {"mac": "B8D61A8B17CC", "time": None, "unixtime": None,
                "wakeup_reason": {"boot": "deepsleep_wake", "cause": "status_update"}, "wakeup_period": 600},
    },
})


def notify(params: dict[str, Any]) -> str:
    return json.dumps({"src": S2, "dst": f"{S2}/events", "method": "NotifyStatus", "params": params})


def test_shelly_gen2_full_status() -> None:
    out = run(cfg("shelly_gen2", S2), RPC, FULL)
    assert values(out) == {"temperature": (19.8, "C"), "humidity": (42.2, "%")}
    assert all(s.ts is None for s in out)


def test_shelly_gen2_battery_and_wifi_signal() -> None:
    """On battery: percent and volts, and the Wi-Fi RSSI; on USB (FULL: external present) the empty slot's
    0 % is left out, so a powered H&T never warns of a low battery."""
    c, state = cfg("shelly_gen2", S2), DeviceState()
    run(c, RPC, FULL, state)
    out = run(c, RPC, notify({"devicepower:0": {"id": 0, "battery": {"V": 5.52, "percent": 81},
                                                "external": {"present": False}}, "wifi": {"rssi": -67}}), state)
    assert values(out) == {"battery": (81.0, "%"), "battery_voltage": (5.52, "V"), "signal": (-67.0, "dBm")}
    assert "battery" not in values(run(c, RPC, FULL, DeviceState()))


def test_shelly_gen2_notify_status_merged_on_full_status() -> None:
    c, state = cfg("shelly_gen2", S2), DeviceState()
    run(c, RPC, FULL, state)
    out = run(c, RPC, notify({"ts": 1680963479.1, "temperature:0": {"id": 0, "tC": 20.4, "tF": 68.7}}), state)
    assert values(out) == {"temperature": (20.4, "C"), "humidity": (42.2, "%")}
    out = run(c, RPC, notify({"ts": 1680964079.1, "humidity:0": {"id": 0, "rh": 45.0}}), state)
    assert values(out) == {"temperature": (20.4, "C"), "humidity": (45.0, "%")}


def test_shelly_gen2_unrelated_notify_yields_nothing() -> None:
    # VERBATIM envelope of a real device (cloud state change)
    payload = ('{"src":"shellyplus1-08b61fd90730","dst":"shellyplus1-08b61fd90730/events","method":"NotifyStatus",'
               '"params":{"ts":1736604020.06,"cloud":{"connected":true}}}')
    assert run(cfg("shelly_gen2", "shellyplus1-08b61fd90730"), "shellyplus1-08b61fd90730/events/rpc", payload) == []


def test_shelly_gen2_null_and_errors_are_faults() -> None:
    c, state = cfg("shelly_gen2", S2), DeviceState()
    out = run(c, RPC, notify({"temperature:0": {"id": 0, "tC": None, "tF": None}}), state)
    assert faults(out) == {"temperature": f"temperature:0.tC is null on {RPC}"}
    out = run(c, RPC, notify({"temperature:0": {"id": 0, "tC": None, "errors": ["read"]}}), state)
    assert "errors" in faults(out)["temperature"] and RPC in faults(out)["temperature"]


def test_shelly_gen2_device_ts_when_trusted() -> None:
    out = run(cfg("shelly_gen2", S2, trust_device_time=True), RPC, FULL)
    assert out[0].ts == pytest.approx(1680962879.62)


def test_shelly_gen2_status_topic() -> None:
    c = cfg("shelly_gen2", S2)
    assert values(run(c, f"{S2}/status/temperature:0", '{"id":0,"tC":5.5,"tF":41.9}')) == {"temperature": (5.5, "C")}


def test_shelly_gen2_not_rpc_is_bad() -> None:
    with pytest.raises(BadPayload):
        run(cfg("shelly_gen2", S2), RPC, '{"hello": 1}')


# --------------------------------------------------------------------------- 1.5 ESPHome

E = "coldroom1/sensor/room_temperature/state"


@pytest.mark.parametrize(("payload", "value", "fault"), [
    ("21.3", 21.3, None),
    ("2.4", 2.4, None),
    ("nan", None, f"temperature is 'nan' on {E}"),
    ("None", None, f"temperature is 'None' on {E}"),
])
def test_esphome_plain_values(payload: str, value: float | None, fault: str | None) -> None:
    out = run(cfg("esphome", "coldroom1", object_ids={"temperature": "room_temperature"}), E, payload)
    assert [(s.value, s.unit, s.fault) for s in out] == [(value, "C", fault)]


def test_esphome_humidity_object() -> None:
    c = cfg("esphome", "coldroom1", object_ids={"temperature": "t", "humidity": "rh"})
    assert values(run(c, "coldroom1/sensor/rh/state", "81")) == {"humidity": (81.0, "%")}


@pytest.mark.parametrize(("topic", "payload", "expected"), [
    ("coldroom1/sensor/battery_level/state", "87", {"battery": (87.0, "%")}),
    ("coldroom1/sensor/wifi_signal/state", "-71", {"signal": (-71.0, "dBm")}),
    ("coldroom1/sensor/wifi_signal/state", "nan", {}),  # no number: nothing, and no fault of the room
    ("coldroom1/sensor/t/state", "4.5", {"temperature": (4.5, "C")}),
])
def test_esphome_the_nodes_battery_and_wifi_signal(topic: str, payload: str, expected: dict[str, Any]) -> None:
    c = cfg("esphome", "coldroom1", object_ids={"temperature": "t"},
            device_object_ids={"battery": "battery_level", "signal": "wifi_signal"})
    out = run(c, topic, payload)
    assert values(out) == expected and faults(out) == {}


def test_device_object_ids_belong_to_esphome_only() -> None:
    with pytest.raises(ValueError, match="device_object_ids applies only to format esphome"):
        cfg("tasmota", "coldroom1", device_object_ids={"battery": "b"})


# --------------------------------------------------------------------------- 1.6 Home Assistant

H = "homeassistant/sensor/sensorBedroom/state"


def test_homeassistant_common_state() -> None:
    out = run(cfg("homeassistant", H), H, '{ "temperature": 23.20, "humidity": 43.70 }')
    assert values(out) == {"temperature": (23.2, "C"), "humidity": (43.7, "%")}


def test_homeassistant_plain_state_topic() -> None:
    c = cfg("homeassistant", H, values={"temperature": ""})
    assert values(run(c, H, "23.2")) == {"temperature": (23.2, "C")}
    assert faults(run(c, H, "unavailable")) == {"temperature": f"value is 'unavailable' on {H}"}


def test_homeassistant_missing_key_is_fault() -> None:
    assert faults(run(cfg("homeassistant", H), H, '{"humidity": 40}')) == {"temperature": f"temperature missing on {H}"}


# --------------------------------------------------------------------------- generic json

J = "factory/logger7/data"


def test_json_paths_scale_units_and_time() -> None:
    c = cfg("json", J, trust_device_time=True,
            values={"temperature": {"path": "data.ch[0].t", "scale": 0.1, "unit": "F"}, "humidity": "data.ch[0].rh"},
            timestamp={"path": "data.time", "format": "%Y-%m-%d %H:%M:%S", "timezone": "Asia/Shanghai"})
    out = run(c, J, '{"data": {"time": "2026-11-22 08:00:00", "ch": [{"t": 395, "rh": 88.5}]}}')
    assert values(out) == {"temperature": (pytest.approx(39.5), "F"), "humidity": (88.5, "%")}
    assert out[0].ts == datetime(2026, 11, 22, 0, 0, tzinfo=UTC).timestamp()


def test_json_missing_value_is_fault() -> None:
    c = cfg("json", J, values={"temperature": "t", "humidity": "rh"})
    assert faults(run(c, J, '{"t": 3.0}')) == {"humidity": f"rh missing on {J}"}


def test_json_scalar_payload_is_bad() -> None:
    with pytest.raises(BadPayload):
        run(cfg("json", J, values={"temperature": "t"}), J, "3.5")


@pytest.mark.parametrize(("raw", "fmt", "expected"), [
    (1700000000, "epoch_s", 1700000000.0),
    (1700000000123, "epoch_ms", 1700000000.123),
    ("2023-11-14T22:13:20Z", "iso", 1700000000.0),
    ("2023-11-15 06:13:20", "%Y-%m-%d %H:%M:%S", 1700000000.0),
    ("garbage", "iso", None),
    (10**400, "epoch_ms", None),  # found by the long fuzz run: OverflowError escaped the parser
    (10**400, "epoch_s", None),
])
def test_to_epoch(raw: Any, fmt: str, expected: float | None) -> None:
    assert to_epoch(raw, fmt, "Asia/Shanghai") == (pytest.approx(expected) if expected else None)


def test_dig() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert dig(doc, "a.b[1].c") == (True, 2)
    assert dig(doc, "a.b.0.c") == (True, 1)
    assert dig(doc, "a.x") == (False, None)
    assert dig(doc, "") == (True, doc)


# found by tests/fuzz (long run): these escaped as ValueError, RecursionError or OverflowError, or gave inf
@pytest.mark.parametrize(("payload", "reason"), [("1" * 5000, "not JSON"), ("[" * 100_000, "JSON nested too deep")])
def test_pathological_json_is_a_bad_payload(payload: str, reason: str) -> None:
    with pytest.raises(BadPayload) as err:
        run(cfg("zigbee2mqtt", "zigbee2mqtt/x"), "zigbee2mqtt/x", payload)
    assert err.value.reason == reason


@pytest.mark.parametrize("raw", ["1" + "0" * 400, "1e400", "Infinity", '"inf"', '"-Infinity"'])
def test_number_beyond_a_float_is_a_fault_naming_the_topic(raw: str) -> None:
    (s,) = run(cfg("zigbee2mqtt", "zigbee2mqtt/x"), "zigbee2mqtt/x", f'{{"temperature": {raw}}}')
    assert s.value is None and s.fault is not None and "zigbee2mqtt/x" in s.fault


def test_a_json_sensors_plan_is_built_once_from_its_config_and_reports_in_order() -> None:
    # parse_json reads it for every message instead of deriving quantities and units again
    c = cfg("json", "room/1", values={"humidity": "h", "temperature": {"path": "a.t", "unit": "F"}})
    plan = c.json_plan
    assert plan is c.json_plan
    assert (plan.whole, plan.explicit, plan.units) == (False, True, (("humidity", "%"), ("temperature", "F")))
    assert values(run(c, "room/1", '{"h": 40, "a": {"t": 41}}')) == {"humidity": (40.0, "%"), "temperature": (41.0, "F")}
