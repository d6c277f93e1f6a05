"""JSON shapes of the API, built from the live view and the journal."""

from __future__ import annotations

from typing import Any

from daemon.alarms.rules import DEVICE_KINDS
from daemon.alarms.texts import render_detail
from daemon.api.online import sensors_online
from daemon.api.services import Services
from daemon.messages import render
from daemon.ports.model import DEVICE_QUANTITIES, Flag, Reading
from daemon.storage.alerts import AlertRow, CorrectiveAction

_RANK = {"firing": 3, "acknowledged": 2, "pending": 1}


def reading_json(r: Reading) -> dict[str, Any]:
    return {
        "id": r.id, "ts": r.ts, "zone": r.zone, "sensor": r.sensor, "quantity": r.quantity.value,
        "value": r.value, "unit": r.quantity.unit, "quality": r.quality.name.lower(), "note": r.note or None,
        # "arrival": the device sent no time; "replayed": and the broker delivered it late, from its backlog
        "time": "device" if not r.flags & Flag.RECEIVED else "arrival",
        "replayed": bool(r.flags & Flag.REPLAYED),
    }


def alert_json(a: AlertRow, lang: str) -> dict[str, Any]:
    return {
        "id": a.id, "zone": a.zone, "sensor": a.sensor, "kind": a.kind, "kind_text": render(f"kind.{a.kind}", lang),
        "severity": a.severity, "state": a.state, "started": a.started, "fired": a.fired, "acked": a.acked,
        "acked_by": a.acked_by, "resolved": a.resolved, "value": a.value, "limit": a.limit_value, "peak": a.peak,
        "detail": render_detail(a.detail or "", lang) or None,
        "closed": a.closed, "closed_by": a.closed_by, "ack_value": a.ack_value, "reescalated": a.reescalated,
        # acknowledged once, and firing again because it kept going: the page shows it apart
        "reescalated_text": render("state.reescalated", lang) if a.reescalated and a.state == "firing" else None,
    }


def action_json(x: CorrectiveAction, lang: str) -> dict[str, Any]:
    return {"id": x.id, "ts": x.ts, "who": x.who, "kind": x.kind, "kind_text": render(f"action.{x.kind}", lang),
            "text": x.text}


def device_json(last: dict[str, Reading], alerts: list[AlertRow]) -> dict[str, Any]:
    """What the sensor says of itself: newest good battery (%, V) and signal (dBm, LQI), and whether a low-battery
    alarm of it is open; a quantity it never sent is null."""
    out: dict[str, Any] = {q: None for q in sorted(DEVICE_QUANTITIES)}
    for q in DEVICE_QUANTITIES:
        r = last.get(q)
        if r is not None and r.good:
            out[q] = {"value": r.value, "unit": r.quantity.unit, "ts": r.ts}
    out["battery_low"] = any(a.kind == "battery_low" for a in alerts)
    return out


def zones_json(d: Services, open_alerts: list[AlertRow], lang: str) -> dict[str, Any]:
    now = d.clock.now()
    online = sensors_online(d.cfg, d.live, now, open_alerts)
    out = []
    for z in d.cfg.zones:
        com = d.cfg.commodity(z.id)
        lim = d.rules.limits[z.id]
        za = [a for a in open_alerts if a.zone == z.id]
        # a low battery is the installer's, not the room's: shown on its sensor, the room stays "ok"
        room = [a for a in za if a.kind not in DEVICE_KINDS]
        state = max((a.state for a in room), key=lambda s: _RANK.get(s, 0), default="ok")
        muted = d.rules.muted(z.id, now)
        sensors = []
        for s in d.cfg.sensors_of(z.id):
            live = d.live.sensors.get(s.id)
            last = live.last if live else {}
            newest = max((r.ts for q, r in last.items() if q not in DEVICE_QUANTITIES), default=None)
            sensors.append({
                "id": s.id, "name": s.name, "type": s.type,
                "online": online[s.id], "reason": live.reason if live else "",
                "last_ts": newest,
                "readings": {q: reading_json(r) for q, r in last.items()},
                "device": device_json(last, [a for a in za if a.sensor == s.id and a.kind in DEVICE_KINDS]),
            })
        out.append({
            "id": z.id, "name": z.display_name(lang), "state": state, "muted": muted,
            "commodity": None if com is None else {
                "key": com.key, "name": com.name(lang), "temp_min": com.temp_min, "temp_max": com.temp_max,
                "rh_min": com.rh_min, "rh_max": com.rh_max, "storage_life": com.storage_life,
                "unverified": com.unverified,
            },
            "limits": {"temp_high": lim.temp_high, "temp_low": lim.temp_low, "freeze": lim.freeze,
                       "rh_high": lim.rh_high, "rh_low": lim.rh_low},
            "sensors": sensors,
            "alerts": [alert_json(a, lang) for a in za],
        })
    site_alerts = [alert_json(a, lang) for a in open_alerts if a.zone == "_site"]
    site = {"id": d.cfg.site.id, "name": d.cfg.site.name, "timezone": d.cfg.site.timezone, "alerts": site_alerts}
    return {"site": site, "time": now, "lang": lang, "zones": out}
