"""Precooling runs over HTTP: staff start and stop them, anyone with a staff token reads their figures.

The rules and the figures: `daemon/lots/precool.py`, `daemon/reports/cooling.py`, docs/precooling.md."""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from daemon.api.alerts import RowId
from daemon.api.auth import Caller, Tokens
from daemon.api.services import Services
from daemon.lots.precool import PrecoolError, Precooling


class StartBody(BaseModel):
    zone: str = Field(description="a precooling room (zones[].precool in the config)")
    lot: str | None = Field(None, description="the lot being cooled (its commodity sets the target)")
    commodity: str | None = Field(None, description="catalog key, when no lot is given; default: the room's")
    at: datetime | None = Field(None, description="when the produce went in, if earlier (within 24 h)")


async def _run(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kw)
    except PrecoolError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()
    runs = Precooling(d.journal, d.cfg)
    staff = Depends(tokens.require("staff", "manager"))
    tz = zoneinfo.ZoneInfo(d.cfg.site.timezone)

    @r.post("/api/v1/precool", status_code=201)
    async def start(body: StartBody, caller: Caller = staff) -> dict[str, Any]:
        """Start a run in a precooling room; 409 while the room has one open."""
        at = None if body.at is None else (body.at if body.at.tzinfo else body.at.replace(tzinfo=tz)).timestamp()
        result: dict[str, Any] = await _run(runs.start, body.zone, d.clock.now(), caller.name, role=caller.role,
                                            lot=body.lot, commodity=body.commodity, at=at)
        return result

    @r.post("/api/v1/precool/{run_id}/stop")
    async def stop(run_id: RowId, caller: Caller = staff) -> dict[str, Any]:
        """End a run before 7/8 cooling; its figures so far are kept on it."""
        result: dict[str, Any] = await _run(runs.stop, run_id, d.clock.now(), caller.name, caller.role)
        return result

    @r.get("/api/v1/precool")
    async def run_list(zone: str | None = None, open_only: bool = False, caller: Caller = staff) -> dict[str, Any]:
        """Runs, newest first, each with its figures (computed now while open)."""
        return {"runs": await _run(runs.runs, d.clock.now(), zone=zone, open_only=open_only)}

    @r.get("/api/v1/precool/{run_id}")
    async def run_view(run_id: RowId, caller: Caller = staff) -> dict[str, Any]:
        result: dict[str, Any] = await _run(runs.view, run_id, d.clock.now())
        return result

    return r
