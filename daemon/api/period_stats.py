"""Min / max / mean / MKT of a room over any period, for the history page: the compliance report's own
statistics (daemon/reports/compliance.zone_stats), open on the box's LAN like /api/v1/history."""

from __future__ import annotations

import asyncio
import zoneinfo
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from daemon.alarms.rules import zone_limits
from daemon.api.history import DAY, MAX_SPAN, when
from daemon.api.services import Services
from daemon.reports.compliance import zone_stats


def router(d: Services) -> APIRouter:
    r = APIRouter()
    tz = zoneinfo.ZoneInfo(d.cfg.site.timezone)

    @r.get("/api/v1/history/summary")
    async def summary(
        zone: str,
        start: str | None = Query(None, description="epoch s, date or ISO date-time; default end - 24 h"),
        end: str | None = Query(None, description="default now"),
    ) -> dict[str, Any]:
        """Per quantity: the zone's summary over [start, end) (count, completeness, min, max, mean, MKT ...)."""
        try:
            z = d.cfg.zone(zone)
        except StopIteration:
            raise HTTPException(404, f"unknown zone {zone!r}; known: {', '.join(x.id for x in d.cfg.zones)}") from None
        b = when(end, "end", tz) or d.clock.now()
        a = when(start, "start", tz) or b - DAY
        if b <= a or b - a > MAX_SPAN:
            raise HTTPException(422, "end must be after start, at most three years later")
        lim = zone_limits(z, d.cfg.commodity(zone))
        bounds = {"temperature": (lim.temp_low, lim.temp_high), "humidity": (lim.rh_low, lim.rh_high)}
        out: dict[str, Any] = {"zone": zone, "start": a, "end": b}
        for q, (low, high) in bounds.items():
            st = await asyncio.to_thread(zone_stats, d.journal, d.cfg, zone, q, a, b, low, high)
            out[q] = None if st is None else {"low": low, "high": high, **{
                k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(st.zone).items()}}
        return out

    return r
