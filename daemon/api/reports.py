"""Compliance reports over HTTP (manager role): JSON, CSV, print-ready HTML, PDF."""

from __future__ import annotations

import asyncio
import tempfile
import zoneinfo
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from daemon.api.auth import Caller, Tokens
from daemon.api.download import attachment
from daemon.api.services import Services
from daemon.messages import LANGS
from daemon.reports.compliance import ReportError, compliance, period_bounds, to_csv
from daemon.reports.pdf import PdfError, html_to_pdf
from daemon.reports.pdf_doc import json_copy, signed_html


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()

    @r.get("/api/v1/reports/compliance")
    async def report(
        zone: str,
        period: str = Query("day", pattern="^(day|week|month|custom)$"),
        date: str | None = Query(None, description="a day in the period, YYYY-MM-DD (default today)"),
        start: str | None = Query(None, description="custom: date or date-time, site time zone"),
        end: str | None = Query(None, description="custom: date (inclusive) or date-time (exclusive)"),
        format: str = Query("json", pattern="^(json|csv|html|pdf)$"),
        lang: str | None = None,
        caller: Caller = Depends(tokens.require("manager")),  # noqa: B008
    ) -> Response:
        lang = lang if lang in LANGS else d.cfg.site.language
        tz = zoneinfo.ZoneInfo(d.cfg.site.timezone)
        now = float(int(d.clock.now()))  # whole seconds: the signed copy names it for --verify
        await d.commit_pending()  # a report of today counts the readings still in their commit window
        try:
            a, b = period_bounds(period, tz, now, day=date, start=start, end=end)  # type: ignore[arg-type]
            rep = await asyncio.to_thread(compliance, d.journal, d.cfg, zone, a, b, now, period)
        except ReportError as exc:
            raise HTTPException(404 if "unknown zone" in str(exc) else 422, str(exc)) from None
        name = f"report-{zone}-{datetime.fromtimestamp(a, tz):%Y%m%d}"
        if format == "json":
            return JSONResponse(json_copy(rep, d.cfg))
        if format == "csv":
            return Response(to_csv(rep, lang), media_type="text/csv; charset=utf-8",
                            headers=attachment(f"{name}.csv"))
        page = signed_html(rep, d.cfg, lang)
        if format == "html":
            return HTMLResponse(page)
        with tempfile.TemporaryDirectory(prefix="coldchain-report-") as tmp:
            try:
                out = await asyncio.to_thread(html_to_pdf, page, Path(tmp) / f"{name}.pdf")
            except PdfError as exc:
                raise HTTPException(503, str(exc)) from None
            body = out.read_bytes()
        return Response(body, media_type="application/pdf",
                        headers=attachment(f"{name}.pdf"))

    return r
