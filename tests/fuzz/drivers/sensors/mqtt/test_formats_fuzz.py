"""Every MQTT payload parser against generated payloads: a list of Samples or BadPayload, nothing else.

Each fault Sample names the topic it came from (so the installer can find the device), each
value is a finite float, and the driver counts a bad payload once per topic and reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.sensors.mqtt.formats import PARSERS, BadPayload, DeviceState, parse
from drivers.sensors.mqtt.schema import MqttSensorConfig
from tests.fuzz.budget import FUZZ

TOPICS = {
    "tasmota": "tele/coldroom1/SENSOR",
    "zigbee2mqtt": "zigbee2mqtt/cold_sensor",
    "shelly_gen1": "shellies/shellyht-A1B2C3/sensor/temperature",
    "shelly_gen2": "shellyhtg3-a1b2c3/events/rpc",
    "esphome": "coldroom/sensor/temperature/state",
    "homeassistant": "home/coldroom/state",
    "json": "site/room1/th",
}
OPTIONS: dict[str, list[dict[str, Any]]] = {
    "tasmota": [{}, {"sensor_key": "AM2301"}, {"ds18b20_id": "00000566CC39"}, {"trust_device_time": True}],
    "zigbee2mqtt": [{}, {"trust_device_time": True}],
    "shelly_gen1": [{}],
    "shelly_gen2": [{}, {"topic": "shellyhtg3-a1b2c3/status/temperature:0"}],
    "esphome": [{}],
    "homeassistant": [{}],
    "json": [
        {"values": {"temperature": "temperature"}},
        {"values": {"temperature": "data.t", "humidity": {"path": "data.rh", "scale": 0.1}},
         "timestamp": {"path": "ts", "format": "epoch_ms"}, "trust_device_time": True},
        {"values": {"temperature": "[0].v"}, "timestamp": {"path": "time", "format": "iso"}, "trust_device_time": True},
    ],
}
KEYS = ["Temperature", "Humidity", "TempUnit", "Time", "StatusSNS", "AM2301", "DS18B20-1", "Id", "temperature",
        "humidity", "tC", "tF", "rh", "value", "params", "method", "temperature:0", "humidity:0", "tmp", "hum",
        "data", "t", "ts", "time", "v", "battery", "linkquality"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.integers(10**308, 10**320),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nan", "NaN", "-nan", "null", "unavailable", "", " 12.5 ", "85.0", "1e400", "inf", "C", "F",
                     "2024-02-30T25:61:00", "2024-01-01T00:00:00Z", "00000566CC39", "１２.５", "\x00"]),
    st.text(max_size=20),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner,
                                                 max_size=6)), max_leaves=25)


def payloads() -> st.SearchStrategy[bytes]:
    """Mostly JSON built from the formats' own keys (deep enough to reach every branch), some raw bytes."""
    def dump(v: Any) -> bytes:
        return json.dumps(v, allow_nan=True).encode()
    extremes = st.sampled_from([b"1" * 5000, b"[" * 100_000, b"1" + b"0" * 400, b'{"temperature": 1' + b"0" * 400
                                + b"}", b'{"value": Infinity}', b'{"Temperature": -Infinity}', b"NaN"])
    return st.one_of(JSON.map(dump), st.binary(max_size=200), st.text(max_size=60).map(str.encode), extremes)


def config(fmt: str, options: dict[str, Any]) -> MqttSensorConfig:
    return MqttSensorConfig.model_validate({"id": "s1", "zone": "z1", "type": "mqtt", "format": fmt,
                                            "topic": TOPICS[fmt], **options})




def check(fmt: str, c: MqttSensorConfig, payload: bytes, state: DeviceState) -> None:
    topic = c.topic if "#" not in c.topic and "+" not in c.topic else TOPICS[fmt]
    try:
        samples = parse(topic, payload, c, state)
    except BadPayload as exc:
        assert exc.reason and len(exc.reason) < 120
        return
    for s in samples:
        assert s.sensor == "s1"
        # the room's quantities, and the device's own (battery and radio), which some formats carry
        assert s.quantity in ("temperature", "humidity", "battery", "battery_voltage", "signal", "link_quality")
        if s.fault is not None:
            assert s.value is None
            assert topic in s.fault, f"fault {s.fault!r} does not name the topic"
        else:
            assert isinstance(s.value, float) and math.isfinite(s.value), s
        assert s.ts is None or math.isfinite(s.ts)


def test_every_format_is_fuzzed() -> None:
    assert set(OPTIONS) == set(PARSERS) == set(TOPICS)


@pytest.mark.parametrize("fmt", sorted(PARSERS))
def test_parsers_return_samples_or_bad_payload(fmt: str) -> None:
    configs = [config(fmt, o) for o in OPTIONS[fmt]]

    @FUZZ
    @given(st.sampled_from(configs), st.lists(payloads(), min_size=1, max_size=3))
    def run(c: MqttSensorConfig, msgs: list[bytes]) -> None:
        state = DeviceState(site_timezone="Asia/Shanghai")  # several messages: Shelly merges into the last status
        for payload in msgs:
            check(fmt, c, payload, state)

    run()
