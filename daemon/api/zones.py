"""The live zones (what the zones page shows) and the raw readings: reads, open on the box's LAN."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from daemon.api.services import Services
from daemon.api.views import reading_json, zones_json
from daemon.messages import LANGS

MAX_EPOCH = 253_402_300_799.0  # 9999-12-31T23:59:59Z


def parse_time(value: str | None, name: str) -> float | None:
    """Epoch seconds from epoch seconds or ISO 8601 (naive means UTC)."""
    if value is None or value == "":
        return None
    try:
        t = float(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(422, f"{name}: {value!r} is neither epoch seconds nor ISO 8601") from None
        t = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    if not -MAX_EPOCH <= t <= MAX_EPOCH:  # also nan and inf; the journal keeps ms in a 64-bit INTEGER
        raise HTTPException(422, f"{name}: {value!r} is not a time between the years 1 and 9999")
    return t


def router(d: Services) -> APIRouter:
    r = APIRouter()

    @r.get("/api/v1/zones")
    async def zones(lang: str = Query(None, description="zh-CN or en")) -> dict[str, Any]:
        lang = lang if lang in LANGS else d.cfg.site.language
        open_alerts = await asyncio.to_thread(d.journal.alerts.find, open_only=True)
        return zones_json(d, open_alerts, lang)

    @r.get("/api/v1/readings")
    async def readings(
        zone: str | None = None,
        sensor: str | None = None,
        quantity: str | None = None,
        start: str | None = Query(None, description="epoch seconds or ISO 8601"),
        end: str | None = Query(None, description="epoch seconds or ISO 8601"),
        limit: int = Query(1000, ge=1, le=100_000),
        order: str = Query("asc", pattern="^(asc|desc)$"),
    ) -> dict[str, Any]:
        rows = await asyncio.to_thread(
            d.journal.readings.query, zone=zone, sensor=sensor, quantity=quantity, start=parse_time(start, "start"),
            end=parse_time(end, "end"), limit=limit, newest_first=order == "desc",
        )
        return {"count": len(rows), "readings": [reading_json(r) for r in rows]}

    return r
