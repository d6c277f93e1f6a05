"""The box -> hub contract: which topic is what, and the checks a message must pass before it is stored.

Pure (no broker, no database): a message in, a typed record out, or `BadMessage` naming the topic and the key.
The site is taken from the topic, which the broker's ACL ties to the box's login; a payload that claims another
site is refused, so one center cannot write another's record.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

ALARM_STATES = ("open", "acknowledged", "resolved", "closed")
SITE_KINDS = ("center", "vehicle")
EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransformationEvent", "AssociationEvent", "TransactionEvent")


class BadMessage(ValueError):
    """A message the hub will not store; its text names the topic and what is wrong."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason


@dataclass(frozen=True)
class Status:
    site: str
    state: str
    ts: int


@dataclass(frozen=True)
class Room:
    zone: str
    name: str | None
    capacity: float | None
    unit: str | None
    commodity: str | None


@dataclass(frozen=True)
class Site:
    site: str
    name: str | None
    timezone: str | None
    lat: float | None
    lon: float | None
    rooms: tuple[Room, ...]
    ts: int
    kind: str = "center"  # or "vehicle": its rooms are compartments, not the region's cold-room capacity


@dataclass(frozen=True)
class Reading:
    """Only what the hub keeps of a reading: when it was taken (for the uplink lag); series live in InfluxDB."""

    site: str
    ts: int


@dataclass(frozen=True)
class Alarm:
    site: str
    id: str
    state: str
    ts: int
    zone: str | None
    sensor: str | None
    kind: str
    value: float | None
    by: str | None
    text: str | None


@dataclass(frozen=True)
class LotRef:
    lot: str
    role: str  # "lot", "input", "output", "epc"


@dataclass(frozen=True)
class Event:
    """One EPCIS 2.0 event as received, with the columns the hub's queries need pulled out of it."""

    event_id: str
    site: str
    type: str
    biz_step: str | None
    event_time_ms: int
    zone: str | None
    lot: str | None
    destination: str | None
    source: str | None
    lots: tuple[LotRef, ...]
    body: dict[str, Any]


Record = Status | Site | Reading | Alarm | Event


def site_of(topic: str, root: str = "coldchain") -> tuple[str, str]:
    """(site, the rest) of `<root>/<site>/<rest>`."""
    parts = topic.split("/", 2)
    if len(parts) < 3 or parts[0] != root or not parts[1]:
        raise BadMessage(topic, f"not under {root}/<site>/")
    return parts[1], parts[2]


def parse(topic: str, raw: bytes, root: str = "coldchain") -> Record | None:
    """The record a message carries, None for a topic the hub does not keep, BadMessage for one it refuses."""
    site, rest = site_of(topic, root)
    if rest not in ("status", "site", "events/epcis", "events/alarms") and not rest.startswith("readings/"):
        return None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage(topic, f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadMessage(topic, "payload is not a JSON object")
    if rest == "status":
        state = _str(topic, body, "state")
        if state not in ("online", "offline"):
            raise BadMessage(topic, f"state: {state!r} is neither online nor offline")
        return Status(site, state, _int(topic, body, "ts"))
    if rest == "site":
        return _site(topic, site, body)
    if rest == "events/alarms":
        return _alarm(topic, site, body)
    if rest == "events/epcis":
        return event(topic, site, body)
    return Reading(site, _int(topic, body, "ts"))


def _str(topic: str, body: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise BadMessage(topic, f"{key}: expected a non-empty string, got {value!r}")
    return value


def _int(topic: str, body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadMessage(topic, f"{key}: expected a number (ms), got {value!r}")
    if not 0 <= value < 2**53:
        raise BadMessage(topic, f"{key}: {value!r} is not a time in ms since 1970")
    return int(value)


def _num(topic: str, body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadMessage(topic, f"{key}: expected a number or null, got {value!r}")
    if not math.isfinite(value):
        raise BadMessage(topic, f"{key}: {value!r} is not finite")
    return float(value)


def _same_site(topic: str, site: str, claimed: Any, key: str) -> None:
    if claimed != site:
        raise BadMessage(topic, f"{key}: {claimed!r} is not the topic's site {site!r} (a center writes only its own)")


def _site(topic: str, site: str, body: dict[str, Any]) -> Site:
    _same_site(topic, site, body.get("site"), "site")
    loc = body.get("location")
    lat = lon = None
    if isinstance(loc, dict):
        lat, lon = _num(topic, loc, "lat"), _num(topic, loc, "lon")
    rooms = body.get("rooms") or []
    if not isinstance(rooms, list):
        raise BadMessage(topic, "rooms: expected a list")
    out = []
    for i, r in enumerate(rooms):
        where = f"{topic}: rooms[{i}]"
        if not isinstance(r, dict):
            raise BadMessage(where, "expected an object")
        cap = r.get("capacity")
        value = unit = None
        if isinstance(cap, dict):
            value, unit = _num(where, cap, "value"), _str(where, cap, "unit", optional=True)
        out.append(Room(_str(where, r, "zone"), _str(where, r, "name", optional=True), value, unit,
                        _str(where, r, "commodity", optional=True)))
    kind = _str(topic, body, "kind", optional=True) or "center"  # a box from before sends none: a center
    if kind not in SITE_KINDS:
        raise BadMessage(topic, f"kind: {kind!r} is not one of {', '.join(SITE_KINDS)}")
    return Site(site, _str(topic, body, "name", optional=True), _str(topic, body, "timezone", optional=True),
                lat, lon, tuple(out), _int(topic, body, "ts"), kind)


def _alarm(topic: str, site: str, body: dict[str, Any]) -> Alarm:
    _same_site(topic, site, body.get("site"), "site")
    state = _str(topic, body, "state")
    if state not in ALARM_STATES:
        raise BadMessage(topic, f"state: {state!r} is not one of {', '.join(ALARM_STATES)}")
    ident = body.get("id")
    if isinstance(ident, bool) or not isinstance(ident, int | str) or ident == "":
        raise BadMessage(topic, f"id: expected the alert id, got {ident!r}")
    return Alarm(site, str(ident), state, _int(topic, body, "ts"), _str(topic, body, "zone", optional=True),
                 _str(topic, body, "sensor", optional=True), _str(topic, body, "kind"), _num(topic, body, "value"),
                 _str(topic, body, "by", optional=True), _str(topic, body, "text", optional=True))


def short_step(step: str | None) -> str | None:
    """`storing` from any CBV spelling: `storing`, `https://ref.gs1.org/cbv/BizStep-storing`, `...:bizstep:storing`."""
    if not step:
        return None
    for mark in ("BizStep-", "bizstep:"):
        if mark in step:
            return step.rsplit(mark, 1)[1]
    return step


def event_time_ms(where: str, body: dict[str, Any]) -> int:
    """The event's time as epoch ms; EPCIS requires an offset (`Z` or `+08:00`) in `eventTime`."""
    from datetime import datetime

    text = body.get("eventTime")
    if not isinstance(text, str):
        raise BadMessage(where, f"eventTime: expected an ISO 8601 time, got {text!r}")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadMessage(where, f"eventTime: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise BadMessage(where, f"eventTime: {text!r} has no offset")
    return round(when.timestamp() * 1000)


LOT_URI = "urn:coldchain:lot:"  # how the box names a lot as an EPCIS class (`quantityList[].epcClass`)


def code_of(epc: str) -> str:
    """A lot's code from its EPCIS class URI (`urn:coldchain:lot:L1` -> `L1`); any other EPC as it is."""
    return epc.removeprefix(LOT_URI)


def _codes(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if isinstance(value, str):
        return [code_of(value)]
    out = []
    for v in value if isinstance(value, list) else []:
        if isinstance(v, str):
            out.append(code_of(v))
        elif isinstance(v, dict) and isinstance(v.get("epcClass"), str):
            out.append(code_of(v["epcClass"]))
    return out


def lot_refs(body: dict[str, Any]) -> tuple[LotRef, ...]:
    """Every code an event names, with its role: the lot, a transformation's inputs and outputs, the EPCs."""
    refs: dict[tuple[str, str], None] = {}
    if isinstance(body.get("cc:lot"), str):
        refs[(body["cc:lot"], "lot")] = None
    for key, role in (("cc:inputLots", "input"), ("cc:outputLots", "output")):
        for code in _codes(body, key):
            refs[(code, role)] = None
    for key in ("epcList", "parentID", "childEPCs", "quantityList", "childQuantityList"):
        for code in _codes(body, key):
            refs[(code, "epc")] = None
    for key, role in (("inputEPCList", "input"), ("inputQuantityList", "input"),
                      ("outputEPCList", "output"), ("outputQuantityList", "output")):
        for code in _codes(body, key):
            refs[(code, role)] = None
    return tuple(LotRef(code, role) for code, role in refs)


def event(where: str, site: str | None, body: dict[str, Any]) -> Event:
    """An EPCIS event; `site` is the topic's (checked against `cc:site`), or None for a capture (then `cc:site` is it).

    A captured event without an eventID gets a name-based one from its content, so a second capture is a no-op."""
    claimed = body.get("cc:site")
    if site is not None:
        _same_site(where, site, claimed, "cc:site")
    elif not isinstance(claimed, str) or not claimed:
        raise BadMessage(where, "cc:site: a captured event must name its site")
    kind = body.get("type")
    if kind not in EVENT_TYPES:
        raise BadMessage(where, f"type: {kind!r} is not an EPCIS 2.0 event type")
    ident = body.get("eventID")
    if ident is None and site is None:
        canon = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        ident = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, canon))
        body = {**body, "eventID": ident}
    if not isinstance(ident, str) or not ident:
        raise BadMessage(where, f"eventID: expected a URI, got {ident!r}")
    lot = body.get("cc:lot") if isinstance(body.get("cc:lot"), str) else None
    return Event(ident, str(claimed), str(kind), short_step(body.get("bizStep")), event_time_ms(where, body),
                 body.get("cc:zone") if isinstance(body.get("cc:zone"), str) else None, lot,
                 body.get("cc:destination") if isinstance(body.get("cc:destination"), str) else None,
                 body.get("cc:source") if isinstance(body.get("cc:source"), str) else None,
                 lot_refs(body), body)
