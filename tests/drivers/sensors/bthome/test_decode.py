"""format: bthome against the bthome-ble reference vectors (encrypted ones included), in each gateway's
envelope, with packet-id de-duplication across gateways, and its sample config."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from daemon.ports.errors import ConfigError
from daemon.ports.model import Sample
from daemon.ports.payloads import FORMATS, Message, PayloadError
from drivers.sensors.bthome import SAMPLE_YAML, BthomeOptions, BthomeState, decode, decode_message
from drivers.sensors.bthome.decode import nonce
from tests.conftest import make_config
from tests.drivers.sensors.bthome.vectors import ATC_MAC, KEY, SHELLY_MAC, VECTORS, WRONG_KEY


def climate(samples: list[Sample]) -> list[Sample]:
    """The room's samples of a decode: the device's own (battery, signal) are checked apart."""
    return [s for s in samples if s.quantity in ("temperature", "humidity")]


def opts(**kw: object) -> BthomeOptions:
    if isinstance(kw.get("encryption_key"), str):
        kw["encryption_key"] = {"value": kw["encryption_key"]}
    return BthomeOptions.model_validate({"min_interval": 0, **kw})


def msg(payload: bytes | str, now: float = 1000.0, topic: str = "home/TheengsGateway/BTtoMQTT/A4C1388D18B2",
        **kw: object) -> Message:
    body = payload.encode() if isinstance(payload, str) else payload
    return Message(topic, body, "b1", now, **kw)  # type: ignore[arg-type]


def theengs(service_hex: str, mac: str = ATC_MAC, rssi: int = -70) -> str:
    return json.dumps({"id": mac, "rssi": rssi, "servicedata": service_hex, "servicedatauuid": "0xfcd2"})


def raw_adv(service_hex: str) -> bytes:
    body = bytes.fromhex("d2fc" + service_hex)
    return bytes.fromhex("020106") + bytes([len(body) + 1, 0x16]) + body


@pytest.mark.parametrize("case", sorted(VECTORS))
def test_reference_vectors(case: str) -> None:
    raw, mac, key, want = VECTORS[case]
    packet = decode(bytes.fromhex(raw), bytes.fromhex(key) if key else None, mac)
    assert packet.values == pytest.approx(want)
    assert packet.encrypted == (key is not None)


def test_nonce_layout() -> None:
    assert nonce(SHELLY_MAC, 0x41, bytes.fromhex("00112233")).hex() == "5448e68f80a5d2fc4100112233"


def test_wrong_key_is_a_bad_payload() -> None:
    raw, mac, key = WRONG_KEY
    with pytest.raises(PayloadError, match="decryption failed"):
        decode(bytes.fromhex(raw), bytes.fromhex(key), mac)


def test_encrypted_without_key_and_downgrade() -> None:
    with pytest.raises(PayloadError, match=r"set options\.encryption_key"):
        decode(bytes.fromhex(VECTORS["encrypted"][0]))
    with pytest.raises(PayloadError, match="unencrypted BTHome packet"):
        decode(bytes.fromhex(VECTORS["ATC temperature humidity"][0]), bytes.fromhex(KEY))


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty"), ("20020000", "version 1"), ("4002ca", "cut short"), ("41a4", "too short"),
])
def test_broken_packets(raw: str, reason: str) -> None:
    key = bytes.fromhex(KEY) if raw.startswith("41") else None
    with pytest.raises(PayloadError, match=reason):
        decode(bytes.fromhex(raw), key, SHELLY_MAC)


def test_unknown_object_keeps_what_came_before() -> None:
    packet = decode(bytes.fromhex("4002ca09ee0102"))  # 0xEE: no such object id, its length is unknown
    assert packet.values == {"temperature": 25.06} and packet.unknown_object == 0xEE


def test_text_objects_are_skipped() -> None:
    assert decode(bytes.fromhex("40530348656c02ca09")).values == {"temperature": 25.06}


def envelopes(service_hex: str, mac: str) -> dict[str, tuple[str, bytes | str]]:
    """The same packet as each kind of gateway publishes it: topic, payload."""
    shelly = {"src": "shellyplus1-a8032ab12345", "method": "NotifyEvent", "params": {"ts": 1.0, "events": [
        {"component": "script:1", "event": "ble.scan_result", "data": [
            1, "11:22:33:44:55:66", -50, base64.b64encode(raw_adv("4002ffff")).decode(), ""]},
        {"component": "script:1", "event": "ble.scan_result", "data": [
            1, mac.lower(), -66, base64.b64encode(raw_adv(service_hex)).decode(), ""]}]}}
    return {
        "theengs": ("home/TheengsGateway/BTtoMQTT/" + mac.replace(":", ""), theengs(service_hex, mac)),
        "ruuvi gateway": (f"ruuvi/C8:25:2D:8E:9C:2C/{mac}", json.dumps({"gw_mac": "C8:25:2D:8E:9C:2C", "rssi": -61,
                                                                       "data": raw_adv(service_hex).hex()})),
        "shelly scan result": ("shellyplus1-a8032ab12345/events/rpc", json.dumps(shelly)),
        "plain hex (esphome lambda)": (f"esphome/ble/{mac.replace(':', '')}", service_hex.upper()),
    }


@pytest.mark.parametrize("gw", ["theengs", "ruuvi gateway", "shelly scan result", "plain hex (esphome lambda)"])
def test_each_gateway_envelope_encrypted(gw: str) -> None:
    raw, mac, key, _want = VECTORS["encrypted"]
    topic, payload = envelopes(raw, mac)[gw]
    out = decode_message(msg(payload, topic=topic), opts(mac=mac, encryption_key=key), BthomeState())
    assert [(s.quantity, s.value, s.unit, s.fault) for s in climate(out)] == [
        ("temperature", 25.06, "C", None), ("humidity", 50.55, "%", None)]


def test_battery_and_signal_are_kept_as_facts() -> None:
    state = BthomeState()
    decode_message(msg(theengs(VECTORS["ATC packet id, battery"][0])), opts(), state)
    assert state.facts == {"rssi": -70, "battery": 93, "voltage": None, "packet_id": 9, "encrypted": False}
    out = decode_message(msg(theengs(VECTORS["ATC packet id, battery"][0]), now=2000), opts(), BthomeState())
    assert [(s.quantity, s.value, s.unit) for s in out if s not in climate(out)] == [
        ("battery", 93, "%"), ("signal", -70, "dBm")]


def test_packet_id_copies_from_other_gateways_are_dropped() -> None:
    state, o = BthomeState(), opts(mac=ATC_MAC)
    raw = VECTORS["ATC packet id, battery"][0]
    topics = envelopes(raw, ATC_MAC)
    got = [decode_message(msg(p, now=1000 + i * 0.3, topic=t), o, state) for i, (t, p) in enumerate(topics.values())]
    assert [len(climate(x)) for x in got] == [2, 0, 0, 0] and state.dropped == 3
    newer = raw[:4] + "0a" + raw[6:]  # packet id 10
    assert len(climate(decode_message(msg(theengs(newer), now=1002), o, state))) == 2
    late = decode_message(msg(theengs(raw, rssi=-90), now=1003), o, state)  # a slow gateway's copy of 9
    assert late == []
    assert len(climate(decode_message(msg(theengs(raw), now=1000 + 600), o, state))) == 2  # id 9 again, much later: new


def test_encrypted_copies_share_the_counter() -> None:
    raw, mac, key, _ = VECTORS["encrypted"]
    state, o = BthomeState(), opts(mac=mac, encryption_key=key)
    assert len(climate(decode_message(msg(theengs(raw, mac)), o, state))) == 2
    assert decode_message(msg(theengs(raw, mac), now=1001), o, state) == []


def test_another_device_on_a_shared_topic() -> None:
    raw, mac, _key, _ = VECTORS["encrypted"]
    topic, payload = envelopes(raw, mac)["shelly scan result"]
    with pytest.raises(PayloadError, match="no advertisement of this device"):
        decode_message(msg(payload, topic=topic), opts(mac="AA:BB:CC:DD:EE:FF"), BthomeState())


def test_key_from_file_and_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "bindkey"
    f.write_text(KEY + "\n", encoding="utf-8")
    raw, mac, _, _ = VECTORS["encrypted"]
    o = BthomeOptions.model_validate({"mac": mac, "encryption_key": {"file": str(f)}})
    assert len(climate(decode_message(msg(theengs(raw, mac)), o, BthomeState()))) == 2
    o = BthomeOptions.model_validate({"mac": mac, "encryption_key": {"file": str(tmp_path / "missing")}})
    with pytest.raises(PayloadError, match="encryption_key: cannot read secret file"):
        decode_message(msg(theengs(raw, mac)), o, BthomeState())


def test_packet_without_climate_values() -> None:
    with pytest.raises(PayloadError, match="without temperature or humidity"):
        decode_message(msg(theengs("4000090164")), opts(), BthomeState())


def test_sample_yaml_loads_and_masks_the_key(tmp_path: Path) -> None:
    from daemon.ports.secrets import masked

    assert FORMATS["bthome"].options is BthomeOptions
    items = yaml.safe_load(SAMPLE_YAML)
    zones = "".join(f"  - {{id: {z}, name: {z}, commodity: mandarin}}\n" for z in {i["zone"] for i in items})
    cfg = make_config(tmp_path, f"site: {{id: t1, name: t}}\nstorage: {{journal: j.db}}\nzones:\n{zones}"
                                f"sensors: {json.dumps(items)}\n")
    assert cfg.sensors[1].format_options.encryption_key.env == "ROOM2_BLU_HT_KEY"  # type: ignore[attr-defined]
    secret = {"mac": SHELLY_MAC, "encryption_key": {"value": KEY}}
    shown = masked(cfg.sensors[1].model_copy(update={"options": secret}))
    assert KEY not in json.dumps(shown)


@pytest.mark.parametrize(("options", "error"), [
    ({"encryption_key": {"value": KEY}}, "encryption_key needs mac"),
    ({"mac": SHELLY_MAC, "encryption_key": {"value": "abc"}}, "32 hex digits"),
])
def test_bad_options(tmp_path: Path, options: dict[str, object], error: str) -> None:
    sensor = {"id": "b1", "zone": "z1", "type": "mqtt", "format": "bthome", "topic": "t/x", "options": options}
    text = ("site: {id: t1, name: t}\nstorage: {journal: j.db}\nzones: [{id: z1, name: z, commodity: mandarin}]\n"
            f"sensors: [{json.dumps(sensor)}]\n")
    with pytest.raises(ConfigError, match=error) as exc:
        make_config(tmp_path, text)
    assert "abc" not in str(exc.value) or "32 hex" in str(exc.value)
