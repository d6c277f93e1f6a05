"""/metrics in the Prometheus text format: what the daemon did, what is open, how far each sink lags."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from daemon.api.online import sensors_online
from daemon.api.services import Services
from daemon.storage import rollups

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Counters with their meaning; any other counter the daemon keeps is exported with a generic help.
HELP = {
    "readings_stored": "Readings written to the journal.",
    "samples_rejected": "Samples refused by validation (unknown unit, out of physical range ...).",
    "device_readings_thinned": "Battery / signal values not stored: one per hour per sensor, or on a change.",
    "samples_unknown_sensor": "Samples for a sensor id not in the config.",
    "sensor_faults": "Readings flagged as sensor faults.",
    "driver_crashes": "Sensor or notifier driver crashes (each restarted with backoff).",
    "journal_write_errors": "Failed journal writes.",
    "readings_held_back": "Reading batches refused on a full disk to keep the disk reserve for alarms.",
    "disk_reserve_releases": "Times the disk reserve was given back to the journal on a full disk.",
    "alarms_fired": "Alarms that fired.",
    "alarms_resolved": "Alarms resolved.",
    "alarms_acknowledged": "Alarms acknowledged.",
    "escalations": "Escalation steps taken.",
    "messages_sent": "Notifications (SMS ...) sent.",
    "messages_failed": "Notification attempts that failed.",
    "messages_delivered": "Delivery reports: delivered.",
    "messages_undelivered": "Delivery reports: not delivered.",
    "rollup_errors": "Failed rolls of readings into the history rollups.",
    "retention_errors": "Failed retention passes.",
}


def _name(s: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", s)


def _label(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _db_facts(d: Services) -> dict[str, Any]:
    j = d.journal
    forwarders = getattr(d, "forwarders", None) or []
    names = [getattr(f, "cursor_name", None) or getattr(f, "name", None) or getattr(f, "id", None)
             for f in (forwarders.values() if isinstance(forwarders, dict) else forwarders)]
    return {
        "alarms": j.alerts.count_by_state(),
        "outbox": j.outbox.count_by_state(),
        "max_id": j.readings.max_id(),
        "max_event_id": j.alerts.max_event_id(),
        "cursors": j.cursors.all(),
        "rollup_cursor": rollups.cursor(j),
        "sinks": [n for n in names if n],
        "lots": j.lots.in_storage(),
        "open_alerts": j.alerts.find(open_only=True),
    }


def render_metrics(d: Services, facts: dict[str, Any]) -> str:
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, object], float]]) -> None:
        out.append(f"# HELP coldchain_{name} {help_}\n# TYPE coldchain_{name} {kind}\n")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(f"coldchain_{name}{{{lab}}} {value:g}\n" if lab else f"coldchain_{name} {value:g}\n")

    stats = d.stats.snapshot()
    for key in sorted(set(HELP) | set(stats)):
        metric(f"{_name(key)}_total", "counter", HELP.get(key, f"Daemon counter {key}."), [({}, stats.get(key, 0))])
    site = d.cfg.site.id
    metric("up", "gauge", "1 while the daemon runs.", [({"site": site}, 1)])
    metric("uptime_seconds", "gauge", "Seconds since the daemon started.", [({}, d.clock.now() - d.started_at)])
    states = dict(facts["alarms"])
    metric("alarms", "gauge", "Alarms in the journal by state.",
           [({"state": s}, states.get(s, 0)) for s in sorted({"pending", "firing", "acknowledged", "resolved",
                                                              "cancelled", *states})])
    ob = dict(facts["outbox"])
    metric("outbox_messages", "gauge", "Notification outbox by state.",
           [({"state": s}, ob.get(s, 0)) for s in sorted({"pending", "sending", "sent", "failed", *ob})])
    metric("journal_last_id", "gauge", "Id of the newest reading in the journal.", [({}, facts["max_id"])])
    cursors = facts["cursors"]
    # a sink has two cursors: sink:<id> over reading ids, events:<id> over alarm audit-log ids; a reading
    # lag computed from the events cursor grew with every reading (the soak's /metrics showed it)
    events = {k: v for k, v in cursors.items() if k.startswith("events:")}
    sinks = sorted(set(facts["sinks"]) | (set(cursors) - set(events)))
    metric("journal_lag_readings", "gauge", "Readings in the journal a sink has not forwarded yet.",
           [({"sink": s}, max(0, facts["max_id"] - cursors.get(s, 0))) for s in sinks])
    metric("journal_lag_events", "gauge", "Alarm audit-log entries a sink has not forwarded yet.",
           [({"sink": s}, max(0, facts["max_event_id"] - events[s])) for s in sorted(events)])
    metric("rollup_lag_readings", "gauge", "Journal ids not yet counted in the history rollups (rolled every "
           "5 min; retention deletes nothing above them).", [({}, max(0, facts["max_id"] - facts["rollup_cursor"]))])
    sensors: list[tuple[dict[str, object], float]] = []
    values: list[tuple[dict[str, object], float]] = []
    online = sensors_online(d.cfg, d.live, d.clock.now(), facts.get("open_alerts", []))
    for s in d.cfg.sensors:
        live = d.live.sensors.get(s.id)
        sensors.append(({"sensor": s.id, "zone": s.zone}, 1 if online[s.id] else 0))
        for q, r in (live.last.items() if live else []):
            if r.value is not None:
                values.append(({"sensor": s.id, "zone": s.zone, "quantity": q}, r.value))
    metric("sensor_online", "gauge", "1 when the sensor answers and is not past its no-data limit.", sensors)
    metric("reading", "gauge", "Last value per sensor and quantity (°C, %RH; battery %, V; signal dBm, LQI).", values)
    metric("lots_in_storage", "gauge", "Lots checked in and not yet out.", [({}, facts["lots"])])
    return "".join(out)


def router(d: Services) -> APIRouter:
    r = APIRouter()

    @r.get("/metrics")
    async def metrics() -> PlainTextResponse:
        facts = await asyncio.to_thread(_db_facts, d)
        return PlainTextResponse(render_metrics(d, facts), media_type=CONTENT_TYPE)

    return r
