"""Synthetic box messages, built to the box -> hub contract (docs/hub.md), for the hub's tests.

The box side (drivers/sinks/mqtt_uplink, daemon/lots/epcis.py) was built in parallel; these follow the same
written contract and the box's spellings seen on its branch: a lot is the class `urn:coldchain:lot:<code>` in
quantityList, a temperature summary is a sensorReport of type `Temperature`, a logger's trip is an element whose
sensorMetadata says `cc:transit`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

CONTEXT = ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", {"cc": "https://coldchain-monitor.org/epcis/"}]
T0 = 1_763_568_000_000  # 2025-11-20 00:00 Asia/Shanghai, ms


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def loc(site: str, zone: str | None = None) -> dict[str, str]:
    return {"id": f"urn:coldchain:site:{site}" + (f":zone:{zone}" if zone else "")}


def event(site: str, local_id: int, step: str, lot: str, ms: int, zone: str | None = None, qty: float = 2.0,
          **extra: Any) -> dict[str, Any]:
    """An ObjectEvent of `lot` at `site` (a TransformationEvent when extra names cc:inputLots)."""
    body: dict[str, Any] = {
        "@context": CONTEXT,
        "type": "TransformationEvent" if "cc:inputLots" in extra else "ObjectEvent",
        "eventID": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{site}/{local_id}")),
        "eventTime": iso(ms), "eventTimeZoneOffset": "+08:00",
        "bizStep": step, "readPoint": loc(site, zone), "bizLocation": loc(site, zone),
        "cc:site": site, "cc:lot": lot, **extra,
    }
    if body["type"] == "ObjectEvent":
        body["action"] = "ADD" if step == "commissioning" else "OBSERVE"
        body["quantityList"] = [{"epcClass": f"urn:coldchain:lot:{lot}", "quantity": qty, "uom": "TNE"}]
    if zone:
        body["cc:zone"] = zone
    return body


def report(low: float, mean: float, high: float, transit: bool = False) -> list[dict[str, Any]]:
    """A sensorElementList with one temperature summary (and, for a stay, an alarm-condition report after it)."""
    summary = {"type": "Temperature", "minValue": low, "maxValue": high, "meanValue": mean, "uom": "CEL"}
    alarm_ = {"type": "Temperature", "exception": "ALARM_CONDITION", "value": high + 3, "uom": "CEL"}
    return [{"sensorMetadata": {"cc:transit": True} if transit else {},
             "sensorReport": [summary] if transit else [alarm_, summary]}]


def site_msg(site: str, ms: int, rooms: list[tuple[str, float | None]], name: str = "") -> dict[str, Any]:
    return {"site": site, "name": name or f"{site} 冷库", "timezone": "Asia/Shanghai",
            "location": {"lat": 30.9, "lon": 109.5},
            "rooms": [{"zone": z, "name": f"{z} 号库", "capacity": None if c is None else {"value": c, "unit": "t"},
                       "commodity": "mandarin"} for z, c in rooms], "ts": ms}


def alarm(site: str, ident: int, state: str, ms: int, by: str | None = None, text: str = "温度过高") -> dict[str, Any]:
    return {"id": ident, "site": site, "zone": "z1", "sensor": "s1", "kind": "high", "state": state, "ts": ms,
            "value": 9.5, "by": by, "text": text}


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
