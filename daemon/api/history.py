"""History for charts and export, and the excursions list: reads, open on the box's LAN like /readings."""

from __future__ import annotations

import asyncio
import math
import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response

from daemon.api.download import attachment
from daemon.api.services import Services
from daemon.messages import LANGS, render
from daemon.ports.model import Quantity
from daemon.reports import history as hist
from daemon.reports.compliance import ReportError, parse_when
from daemon.reports.excursions import excursions

DAY = 86400.0
MAX_SPAN = 3 * 366 * DAY
EARLIEST, LATEST = 0.0, 253_402_300_799.0  # 1970-01-01 .. 9999-12-31T23:59:59Z: what datetime can show

_QUANTITIES = f"^({'|'.join(q.value for q in Quantity)})$"  # battery and signal have a history too


def when(value: str | None, name: str, tz: zoneinfo.ZoneInfo) -> float | None:
    """Epoch seconds, or a date / ISO date-time in the site's time zone."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        # "nan", "inf" (float() takes them) and times no calendar holds (datetime overflows): 422, not a 500
        if not math.isfinite(number) or not EARLIEST <= number <= LATEST:
            raise HTTPException(422, f"{name}: {value!r} is not a time (epoch seconds 0 .. {LATEST:.0f})")
        return number
    try:
        return parse_when(value, tz)[0].timestamp()
    except ReportError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


def router(d: Services) -> APIRouter:
    r = APIRouter()
    tz = zoneinfo.ZoneInfo(d.cfg.site.timezone)

    def span(start: str | None, end: str | None, default: float) -> tuple[float, float]:
        b = when(end, "end", tz) or d.clock.now()
        a = when(start, "start", tz) or b - default
        if b <= a:
            raise HTTPException(422, "end must be after start")
        if b - a > MAX_SPAN:
            raise HTTPException(422, "at most three years per request")
        return a, b

    @r.get("/api/v1/history")
    async def history(
        zone: str | None = None,
        sensor: str | None = None,
        quantity: str | None = Query(None, pattern=_QUANTITIES),
        start: str | None = Query(None, description="epoch s, date or ISO date-time; default end - 24 h"),
        end: str | None = Query(None, description="default now"),
        max_points: int = Query(hist.MAX_POINTS, ge=10, le=5000, description="per series"),
        format: str = Query("json", pattern="^(json|csv)$"),
    ) -> Response:
        a, b = span(start, end, DAY)
        interval = min((s.interval for s in d.cfg.sensors), default=60.0)
        offset = int((datetime.fromtimestamp(a, tz).utcoffset() or timedelta()).total_seconds())
        series = await asyncio.to_thread(hist.history, d.journal, start=a, end=b, zone=zone, sensor=sensor,
                                         quantity=quantity, max_points=max_points, min_interval=interval,
                                         offset_s=offset)
        if format == "csv":
            return Response(hist.to_csv(series), media_type="text/csv; charset=utf-8",
                            headers=attachment(f"history-{zone or 'all'}.csv"))
        return JSONResponse({"start": a, "end": b, "series": [s.json() for s in series]})

    @r.get("/api/v1/excursions")
    async def excursion_list(
        zone: str | None = None,
        start: str | None = Query(None, description="default end - 30 days"),
        end: str | None = None,
        product_only: bool = Query(False, description="leave out device alarms (no data, sensor fault ...)"),
        lang: str | None = None,
    ) -> dict[str, Any]:
        lang = lang if lang in LANGS else d.cfg.site.language
        a, b = span(start, end, 30 * DAY)
        rows = await asyncio.to_thread(excursions, d.journal, start=a, end=b, now=d.clock.now(), zone=zone,
                                       product_only=product_only)
        return {"start": a, "end": b,
                "excursions": [{**e.json(), "kind_text": render(f"kind.{e.kind}", lang), "product": e.product}
                               for e in reversed(rows)]}

    return r
