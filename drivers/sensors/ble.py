"""Bluetooth LE advertisements as BLE-to-MQTT gateways relay them; shared by the BLE families.

A RuuviTag or a BTHome sensor only advertises; a gateway hears it and publishes what it heard, each
gateway in its own envelope. This module opens the envelopes (Ruuvi Gateway, OpenMQTTGateway /
Theengs Gateway, Shelly scan-result events, plain hex), gives every family the same `Advert`, and
keeps what the families share: the per-sensor options (address, further gateways, how often to
keep a reading) and the state that drops the copies several gateways relay of one packet.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.ports.durations import Duration
from daemon.ports.model import Sample
from daemon.ports.payloads import Message, PayloadError, PayloadFormat, register

DEDUP_WINDOW = 120.0  # seconds a packet id is remembered: longer than any gateway's relay lag
THROTTLE_SLACK = 0.9  # a packet due at 60 s that arrives at 58 s is kept: advertising intervals jitter
_MAC_RX = re.compile(r"^[0-9A-F]{12}$")
AD_SERVICE_DATA_16, AD_MANUFACTURER = 0x16, 0xFF
CLIMATE = {"temperature": "C", "humidity": "%"}  # the quantities the core stores, in the units BLE sends


def normal_mac(text: str) -> str | None:
    """`AA:BB:CC:DD:EE:FF` from any common spelling (colons, dashes, none, lower case); None if it is none."""
    bare = re.sub(r"[:\-]", "", text.strip()).upper()
    if not _MAC_RX.match(bare):
        return None
    return ":".join(bare[i:i + 2] for i in range(0, 12, 2))


class BleOptions(BaseModel):
    """Options every relayed BLE sensor has (the `options:` of its `type: mqtt` entry)."""

    model_config = ConfigDict(extra="forbid")

    mac: str | None = Field(
        default=None, description="the device's Bluetooth address; needed where one topic carries many devices "
        "(Shelly scan results), checked against the address in the message otherwise",
    )
    relays: list[str] = Field(
        default_factory=list, description="the same device's topic on further gateways (copies are dropped)"
    )
    min_interval: Duration | None = Field(
        default=None, description="keep at most one reading per this long; default: the sensor's interval; "
        "0 = every new measurement (a tag measures every second or so: that is a lot of flash)",
    )

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is None:
            return None
        mac = normal_mac(v)
        if mac is None:
            raise ValueError(f"{v!r} is not a Bluetooth address such as A4:C1:38:8D:18:B2")
        return mac

    @field_validator("relays")
    @classmethod
    def _exact(cls, v: list[str]) -> list[str]:
        if any("+" in t or "#" in t or not t for t in v):
            raise ValueError("relays are exact topics; wildcards (+, #) are not allowed")
        return v


def relay_topics(topic: str, options: BleOptions) -> list[str]:
    """The sensor's topic and the same device's topic on each further gateway."""
    return [topic, *(t.rstrip("/") for t in options.relays)]


def sibling_filters(topic: str) -> list[str]:
    """`<gateway topic>/+`: the other devices one gateway hears show up as unmapped for the installer."""
    head, _, _ = topic.rpartition("/")
    return [f"{head}/+"] if head else []


def register_ble(name: str, decode: Callable[[Message, Any, Any], list[Any]], options: type[BleOptions],
                 state: Callable[[], BleState], description: str) -> PayloadFormat:
    """Register a BLE family's payload format: its topics are the sensor's and its relays'."""
    return register(PayloadFormat(name=name, decode=decode, options=options, new_state=state, topics=relay_topics,
                                  discovery=sibling_filters, description=description))


# --------------------------------------------------------------------------- envelopes


@dataclass
class Advert:
    """One advertisement as a gateway relayed it. `bare` is a payload of no stated kind (plain hex):
    each family reads it as its own data."""

    mac: str | None = None
    rssi: int | None = None
    service: dict[int, bytes] = field(default_factory=dict)  # 16-bit service UUID -> service data
    manufacturer: dict[int, bytes] = field(default_factory=dict)  # company id -> data after it
    bare: bytes | None = None


def _hex(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return bytes.fromhex(text.strip().removeprefix("0x").removeprefix("0X"))
    except ValueError:
        return None


def ad_structures(raw: bytes, into: Advert) -> Advert:
    """Fill `into` from the advertising data's AD structures (length, type, data); a torn tail is ignored."""
    i = 0
    while i < len(raw):
        n = raw[i]
        if n == 0 or i + 1 + n > len(raw):
            break
        kind, body = raw[i + 1], raw[i + 2:i + 1 + n]
        if kind == AD_SERVICE_DATA_16 and len(body) >= 2:
            into.service[int.from_bytes(body[:2], "little")] = body[2:]
        elif kind == AD_MANUFACTURER and len(body) >= 2:
            into.manufacturer[int.from_bytes(body[:2], "little")] = body[2:]
        i += 1 + n
    return into


def _rssi(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _from_json(topic: str, doc: dict[str, Any]) -> list[Advert]:
    if isinstance(doc.get("data"), str):  # Ruuvi Gateway: the whole advertisement in hex; the tag in the topic
        raw = _hex(doc["data"])
        if raw is None:
            raise PayloadError("data is not hex")
        return [ad_structures(raw, Advert(normal_mac(topic.rpartition("/")[2]), _rssi(doc.get("rssi"))))]
    if "servicedata" in doc or "manufacturerdata" in doc:  # OpenMQTTGateway / Theengs Gateway
        adv = Advert(normal_mac(str(doc.get("id", ""))) or normal_mac(topic.rpartition("/")[2]),
                     _rssi(doc.get("rssi")))
        service, uuid = _hex(doc.get("servicedata")), _hex(doc.get("servicedatauuid"))
        if service is not None and uuid is not None and len(uuid) == 2:
            adv.service[int.from_bytes(uuid, "big")] = service
        maker = _hex(doc.get("manufacturerdata"))
        if maker is not None and len(maker) >= 2:
            adv.manufacturer[int.from_bytes(maker[:2], "little")] = maker[2:]
        return [adv]
    events = doc.get("params", {}).get("events") if isinstance(doc.get("params"), dict) else None
    if isinstance(events, list):  # Shelly Gen2+ scan-result events: [version, addr, rssi, adv b64, scan rsp b64]
        return list(_shelly_results(events))
    raise PayloadError("no BLE advertisement in the message (data / servicedata / scan result)")


def _shelly_results(events: list[Any]) -> Iterator[Advert]:
    for ev in events:
        data = ev.get("data") if isinstance(ev, dict) else None
        if not (isinstance(data, list) and len(data) >= 4 and isinstance(data[1], str)):
            continue
        adv = Advert(normal_mac(data[1]), _rssi(data[2]))
        for part in data[3:5]:
            if isinstance(part, str):
                try:
                    ad_structures(base64.b64decode(part, validate=True), adv)
                except (binascii.Error, ValueError):
                    continue
        yield adv


def adverts(msg: Message) -> list[Advert]:
    """The advertisements in one gateway message; PayloadError when it holds none."""
    try:
        text = msg.payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PayloadError("not UTF-8 text") from None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            raise PayloadError("not JSON") from None
        if not isinstance(doc, dict):
            raise PayloadError("not a JSON object")
        return _from_json(msg.topic, doc)
    raw = _hex(text.replace(" ", ""))
    if not raw:
        raise PayloadError("neither JSON nor hex")
    return [Advert(normal_mac(msg.topic.rpartition("/")[2]), bare=raw)]


def pick(msg: Message, options: BleOptions, data_of: Callable[[Advert], bytes | None]) -> tuple[Advert, bytes]:
    """The advertisement of this sensor's device and the family's data in it (`data_of`)."""
    for adv in adverts(msg):
        data = data_of(adv)
        if data is not None and (options.mac is None or adv.mac in (None, options.mac)):
            return adv, data
    raise PayloadError("no advertisement of this device in the message")


def climate_samples(msg: Message, values: dict[str, float | None], what: str) -> list[Sample]:
    """Temperature (°C) and humidity (%) Samples. A quantity in `values` as None is the device's own "not
    available": a fault. Which ones: the sensor's `quantities`, else every one the device sent."""
    wanted = list(msg.quantities) if msg.quantities is not None else [q for q in CLIMATE if q in values]
    out = []
    for q in wanted:
        v = values.get(q)
        fault = None if v is not None else f"{q} {'not available' if q in values else 'missing'} from {what}"
        out.append(Sample(msg.sensor, q, v, CLIMATE.get(q, ""), None, fault))
    return out


def device_samples(msg: Message, values: dict[str, tuple[float | None, str]]) -> list[Sample]:
    """The device's own Samples (quantity -> (value, unit)): battery, battery voltage, the gateway's RSSI.
    A value the device or gateway did not send is left out, not a fault: many devices send no battery at all.
    The core keeps one an hour, or a change (daemon/ingest/device.py)."""
    return [Sample(msg.sensor, q, v, unit) for q, (v, unit) in values.items() if v is not None]


# --------------------------------------------------------------------------- state


@dataclass
class BleState:
    """Per sensor: packet ids recently kept (copies relayed by other gateways are dropped), when a reading
    was last kept, and the last battery / signal facts (shown by `describe()`)."""

    seen: dict[object, float] = field(default_factory=dict)
    last_kept: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    dropped: int = 0

    def fresh(self, key: object | None, now: float) -> bool:
        """False for a packet id kept within DEDUP_WINDOW (a copy from another gateway, or a repeat)."""
        if key is None:
            return True
        if len(self.seen) > 64:
            self.seen = {k: t for k, t in self.seen.items() if now - t < DEDUP_WINDOW}
        when = self.seen.get(key)
        if when is not None and now - when < DEDUP_WINDOW:
            self.dropped += 1
            return False
        self.seen[key] = now
        return True

    def due(self, msg: Message, options: BleOptions) -> bool:
        """True when a reading should be kept now: one per `min_interval` (default the sensor's interval)."""
        every = options.min_interval if options.min_interval is not None else msg.interval
        if self.last_kept is not None and msg.now - self.last_kept < every * THROTTLE_SLACK:
            return False
        self.last_kept = msg.now
        return True
