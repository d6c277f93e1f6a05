"""What "online" means, for every place that shows it (`/healthz`, `/metrics`, the zones API and page).

A sensor is online when its driver says it answers, its newest reading is no older than its
`stale_after`, and no no-data alarm of it is open. The no-data alarm fires at `stale_after`, so
the three agree; checking both covers the seconds before the rules' next tick and an alarm that
stays open (acknowledged) until data comes back. One definition: the fleet dashboard (metrics)
and the zones page had counted silent sensors both ways.
"""

from __future__ import annotations

from collections.abc import Iterable

from daemon.config.schema import AppConfig
from daemon.ingest.live import LiveView
from daemon.ports.model import DEVICE_QUANTITIES
from daemon.storage.alerts import AlertRow


def silent_sensors(open_alerts: Iterable[AlertRow]) -> set[str]:
    """Sensors with an open no-data alarm."""
    return {a.sensor for a in open_alerts if a.kind == "no_data" and a.sensor}


def sensors_online(cfg: AppConfig, live: LiveView, now: float, open_alerts: Iterable[AlertRow]) -> dict[str, bool]:
    """Sensor id -> online, for every configured sensor."""
    silent = silent_sensors(open_alerts)
    out: dict[str, bool] = {}
    for s in cfg.sensors:
        state = live.sensors.get(s.id)
        # the room's quantities only: an hourly battery value says nothing about whether the sensor measures
        newest = max((r.ts for q, r in state.last.items() if q not in DEVICE_QUANTITIES), default=None) \
            if state else None
        fresh = newest is not None and now - newest <= s.stale_after_s
        out[s.id] = bool(state and state.online) and fresh and s.id not in silent
    return out
