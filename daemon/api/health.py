"""GET /healthz: is the box well (journal in WAL, no failed writes), and how are its sensors and uplinks."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from daemon import __version__
from daemon.api.online import sensors_online
from daemon.api.services import Services


def router(d: Services) -> APIRouter:
    r = APIRouter()

    @r.get("/healthz")
    async def healthz() -> dict[str, Any]:
        now = d.clock.now()
        check = {"journal_mode": d.journal.journal_mode()}
        stats = d.stats.snapshot()
        ok = check["journal_mode"] == "wal" and stats.get("journal_write_errors", 0) == 0
        open_alerts = await asyncio.to_thread(d.journal.alerts.find, open_only=True)
        return {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "site": d.cfg.site.id,
            "time": now,
            "uptime_s": round(now - d.started_at, 1),
            "journal": {"path": str(d.journal.path), **check,
                        "last_id": await asyncio.to_thread(d.journal.readings.max_id)},
            "disk_reserve": d.reserve.state,
            "sensors_online": sum(sensors_online(d.cfg, d.live, now, open_alerts).values()),
            "open_alerts": len(open_alerts),
            "uplinks": [await asyncio.to_thread(f.snapshot) for f in d.forwarders],
            "counters": stats,
        }

    return r
