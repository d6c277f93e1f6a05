"""`format: bthome` for `type: mqtt`: BTHome v2 sensors (Xiaomi LYWSD03MMC with custom firmware, Shelly
BLU H&T, ...) whose advertisements a BLE gateway relays to the broker, encrypted ones included.

The MQTT driver owns the connection; this folder only registers a payload format with it
(`daemon.ports.payloads`), so it imports no other driver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from pydantic import Field, field_validator, model_validator

from daemon.ports.model import Sample
from daemon.ports.payloads import Message, PayloadError
from daemon.ports.secrets import SecretRef
from drivers.sensors.ble import Advert, BleOptions, BleState, climate_samples, device_samples, pick, register_ble
from drivers.sensors.bthome.decode import UUID, BthomePacket, decode

__all__ = ["FORMAT", "SAMPLE_YAML", "BthomeOptions", "BthomeState", "decode", "decode_message"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
_KEY_RX = re.compile(r"^[0-9a-fA-F]{32}$")


def _key_bytes(text: str) -> bytes:
    if not _KEY_RX.match(text):
        raise ValueError("a BTHome encryption key is 32 hex digits (16 bytes)")
    return bytes.fromhex(text)


class BthomeOptions(BleOptions):
    """`options:` of a `format: bthome` sensor: the shared BLE ones, and the device's key if it encrypts."""

    encryption_key: SecretRef | None = Field(
        default=None, description="the device's bindkey (32 hex digits): {file: ...}, {env: ...} or {value: ...}; "
        "needs `mac`",
    )

    @field_validator("encryption_key")
    @classmethod
    def _key(cls, v: SecretRef | None) -> SecretRef | None:
        if v is not None and v.value is not None:
            _key_bytes(v.value.get_secret_value().strip())
        return v

    @model_validator(mode="after")
    def _mac_for_key(self) -> BthomeOptions:
        if self.encryption_key is not None and self.mac is None:
            raise ValueError("encryption_key needs mac: the nonce is made with the device's address")
        return self


@dataclass
class BthomeState(BleState):
    """BleState, plus the key once read (a file or variable is read on the first packet)."""

    key: bytes | None = None


def _service_data(adv: Advert) -> bytes | None:
    if UUID in adv.service:
        return adv.service[UUID]
    if adv.bare is not None:  # plain hex: the service data, with or without the UUID in front
        return adv.bare[2:] if adv.bare[:2] == b"\xd2\xfc" else adv.bare
    return None


def _key(options: BthomeOptions, state: BthomeState) -> bytes | None:
    if options.encryption_key is None:
        return None
    if state.key is None:
        try:
            state.key = _key_bytes(options.encryption_key.resolve())
        except ValueError as exc:
            raise PayloadError(f"encryption_key: {exc}") from None
    return state.key


def _dedup_key(packet: BthomePacket) -> tuple[str, int] | None:
    """The packet id where the device sends one, else the encryption counter: copies of one packet share both."""
    if "packet_id" in packet.values:
        return ("pid", int(packet.values["packet_id"]))
    return ("counter", packet.counter) if packet.counter is not None else None


def decode_message(msg: Message, options: BthomeOptions, state: BthomeState) -> list[Sample]:
    """Samples of one relayed packet; [] for a copy another gateway relayed, or one not yet due."""
    adv, raw = pick(msg, options, _service_data)
    packet = decode(raw, _key(options, state), options.mac or adv.mac)
    v = packet.values
    state.facts = {"rssi": adv.rssi, "battery": v.get("battery"), "voltage": v.get("voltage"),
                   "packet_id": v.get("packet_id"), "encrypted": packet.encrypted}
    climate: dict[str, float | None] = {q: v[q] for q in ("temperature", "humidity") if q in v}
    if not climate and msg.quantities is None:
        raise PayloadError("BTHome packet without temperature or humidity")
    if not state.fresh(_dedup_key(packet), msg.now) or not state.due(msg, options):
        return []
    device = device_samples(msg, {"battery": (v.get("battery"), "%"), "battery_voltage": (v.get("voltage"), "V"),
                                  "signal": (adv.rssi, "dBm")})
    return climate_samples(msg, climate, f"BTHome device {options.mac or adv.mac or '?'} on {msg.topic}") + device


FORMAT = register_ble("bthome", decode_message, BthomeOptions, BthomeState,
                      "BTHome v2 (LYWSD03MMC custom firmware, Shelly BLU H&T ...) relayed by a BLE gateway")
