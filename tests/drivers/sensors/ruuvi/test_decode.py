"""format: ruuvi against Ruuvi's published vectors, and as relayed by Ruuvi Gateways (de-duplication,
throttling, the tag's own address), and its sample config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from daemon.ports.model import Sample
from daemon.ports.payloads import FORMATS, Message, PayloadError
from drivers.sensors.ble import BleState
from drivers.sensors.ruuvi import SAMPLE_YAML, RuuviOptions, decode, decode_message
from tests.conftest import make_config
from tests.drivers.sensors.ruuvi.vectors import GATEWAY_EXAMPLE, VECTORS

TAG = "CB:B8:33:4C:88:4F"


def climate(samples: list[Sample]) -> list[Sample]:
    """The room's samples of a decode: the device's own (battery, signal) are checked apart."""
    return [s for s in samples if s.quantity in ("temperature", "humidity")]


def gateway(hex_data: str, rssi: int = -60) -> bytes:
    """A Ruuvi Gateway message with `hex_data` as the manufacturer data (company id 0x0499) of the advertisement."""
    adv = bytes.fromhex("020106") + bytes([len(bytes.fromhex(hex_data)) + 3, 0xFF, 0x99, 0x04]) + bytes.fromhex(hex_data)
    return json.dumps({"gw_mac": "C8:25:2D:8E:9C:2C", "rssi": rssi, "aoa": [], "ts": "1", "data": adv.hex().upper()}).encode()


def msg(payload: bytes, now: float = 1000.0, topic: str = f"ruuvi/C8:25:2D:8E:9C:2C/{TAG}", **kw: object) -> Message:
    return Message(topic, payload, "r1", now, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(VECTORS))
def test_published_vectors(case: str) -> None:
    raw, want = VECTORS[case]
    d = decode(bytes.fromhex(raw))
    assert (d.temperature, d.humidity, d.pressure, d.battery_mv, d.sequence, d.mac) == pytest.approx(want)


def test_rawv2_details_of_the_valid_vector() -> None:
    d = decode(bytes.fromhex(VECTORS["5 valid"][0]))
    assert (d.tx_power, d.movement) == (4, 66)
    assert d.extra == pytest.approx({"acceleration_x": 0.004, "acceleration_y": -0.004, "acceleration_z": 1.036})
    air = decode(bytes.fromhex(VECTORS["E1 valid"][0]))
    assert air.extra["co2"] == 201 and air.extra["pm2_5"] == pytest.approx(11.2) and air.extra["voc"] == 20


def test_gateway_example_gives_temperature_and_humidity() -> None:
    out = decode_message(msg(GATEWAY_EXAMPLE.encode(), topic="ruuvi/C8:25:2D:8E:9C:2C/F4:1F:0C:28:CB:D6"),
                         RuuviOptions(mac="f4-1f-0c-28-cb-d6"), BleState())
    assert [(s.quantity, s.value, s.unit, s.fault) for s in climate(out)] == [
        ("temperature", pytest.approx(27.75), "C", None), ("humidity", pytest.approx(48.9125), "%", None)]


def test_battery_millivolts_and_the_gateways_rssi_are_samples() -> None:
    """Ruuvi's documented example advertisement (2989 mV) and the Gateway's RSSI: stored in V and dBm."""
    out = decode_message(msg(GATEWAY_EXAMPLE.encode(), topic="ruuvi/C8:25:2D:8E:9C:2C/F4:1F:0C:28:CB:D6"),
                         RuuviOptions(mac="f4-1f-0c-28-cb-d6"), BleState())
    device = [(s.quantity, s.value, s.unit, s.fault) for s in out if s not in climate(out)]
    assert device == [("battery_voltage", 2989, "mV", None), ("signal", json.loads(GATEWAY_EXAMPLE)["rssi"], "dBm", None)]
    # a tag at its "not available" battery value sends no battery sample (not a fault: the climate ones are)
    invalid = decode_message(msg(gateway(VECTORS["5 invalid"][0], rssi=-71)), RuuviOptions(), BleState())
    assert [(s.quantity, s.value) for s in invalid if s not in climate(invalid)] == [("signal", -71)]


@pytest.mark.parametrize("case", ["5 invalid", "C5 invalid", "6 invalid", "E1 invalid"])
def test_not_available_values_are_faults(case: str) -> None:
    out = decode_message(msg(gateway(VECTORS[case][0])), RuuviOptions(), BleState())
    assert [s.quantity for s in climate(out)] == ["temperature", "humidity"]
    assert all(s.value is None and s.fault and "not available from Ruuvi tag" in s.fault for s in climate(out))


def test_temperature_only_tag_with_quantities() -> None:
    out = decode_message(msg(gateway(VECTORS["5 valid"][0]), quantities=["temperature"]), RuuviOptions(), BleState())
    assert [(s.quantity, s.value) for s in climate(out)] == [("temperature", pytest.approx(24.3))]


def test_copies_from_two_gateways_and_repeats_are_kept_once() -> None:
    state, opts = BleState(), RuuviOptions(min_interval=0)
    first = decode_message(msg(gateway(VECTORS["5 valid"][0])), opts, state)
    copy = decode_message(msg(gateway(VECTORS["5 valid"][0], -80), now=1000.4,
                              topic=f"ruuvi/C8:25:2D:8E:9C:3D/{TAG}"), opts, state)
    assert len(climate(first)) == 2 and copy == [] and state.dropped == 1
    nxt = VECTORS["5 valid"][0][:32] + "00CE" + VECTORS["5 valid"][0][36:]  # sequence 206: a new measurement
    assert len(climate(decode_message(msg(gateway(nxt), now=1001.3), opts, state))) == 2


def test_one_reading_per_interval_by_default() -> None:
    state, opts, raw = BleState(), RuuviOptions(), VECTORS["5 valid"][0]
    kept = []
    for i in range(100):  # a measurement every 1.285 s for two minutes
        seq = f"{(205 + i) & 0xFFFF:04X}"
        kept += decode_message(msg(gateway(raw[:32] + seq + raw[36:]), now=1000 + i * 1.285, interval=60), opts, state)
    assert len(climate(kept)) == 2 * 3  # at 0 s, ~55 s and ~110 s (jitter slack 10 %)


def test_another_tags_advertisement_is_refused() -> None:
    with pytest.raises(PayloadError, match="advertisement of tag CB:B8"):
        decode_message(msg(gateway(VECTORS["5 valid"][0]), topic="ruuvi/gw/x"), RuuviOptions(mac="AA:BB:CC:DD:EE:FF"),
                       BleState())


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"gw_mac": "x", "data": "zz"}', "data is not hex"),
    (b'{"gw_mac": "x"}', "no BLE advertisement"),
    (b'{"data": "0201061AFF990403"}', "no advertisement of this device"),  # torn AD structure
    (json.dumps({"data": "02010606FF9904035000"}).encode(), "format 3"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1]", "neither JSON nor hex"),
])
def test_bad_payloads(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_message(msg(payload), RuuviOptions(), BleState())


def test_plain_hex_manufacturer_data() -> None:
    out = decode_message(msg(("9904" + VECTORS["C5 valid"][0]).encode()), RuuviOptions(), BleState())
    assert out[0].value == pytest.approx(24.3)


def test_registered_and_sample_yaml_loads(tmp_path: Path) -> None:
    assert FORMATS["ruuvi"].options is RuuviOptions
    items = yaml.safe_load(SAMPLE_YAML)
    zones = "".join(f"  - {{id: {z}, name: {z}, commodity: mandarin}}\n" for z in {i["zone"] for i in items})
    text = f"site: {{id: t1, name: t}}\nstorage: {{journal: j.db}}\nzones:\n{zones}sensors: {json.dumps(items)}\n"
    cfg = make_config(tmp_path, text)
    first = cfg.sensors[0]
    assert first.format_options == RuuviOptions(mac="F4:1F:0C:28:CB:D6")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("options", "error"), [
    ({"mac": "nope"}, "not a Bluetooth address"),
    ({"relays": ["ruuvi/+/x"]}, "wildcards"),
    ({"bindkey": "00"}, "options.bindkey"),
])
def test_bad_options(tmp_path: Path, options: dict[str, object], error: str) -> None:
    from daemon.ports.errors import ConfigError
    sensor = {"id": "r1", "zone": "z1", "type": "mqtt", "format": "ruuvi", "topic": "ruuvi/gw/tag", "options": options}
    text = ("site: {id: t1, name: t}\nstorage: {journal: j.db}\nzones: [{id: z1, name: z, commodity: mandarin}]\n"
            f"sensors: [{json.dumps(sensor)}]\n")
    with pytest.raises(ConfigError, match=error):
        make_config(tmp_path, text)
