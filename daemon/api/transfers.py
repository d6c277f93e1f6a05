"""Transfers between sites over HTTP (staff): split and merge codes, a logger's file for a trip, the chain of
custody, and EPCIS 2.0 export per lot and per period (`daemon/lots/epcis.py`)."""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from daemon.api.auth import Caller, Tokens
from daemon.api.services import Services
from daemon.lots.chain import attach_transit, custody
from daemon.lots.epcis import Epcis
from daemon.lots.store import LotError, Lots, Who
from daemon.lots.transfers import merge, split

MAX_LOGGER_FILE = 4 * 1024 * 1024  # a week of one-minute ISO-time CSV rows is 302 400 bytes (30 a row)


class Child(BaseModel):
    code: str = Field(min_length=3, max_length=64)
    quantity: float | None = Field(None, ge=0)


class SplitBody(BaseModel):
    children: list[Child] = Field(min_length=1, max_length=500)
    at: datetime | None = None


class MergeBody(BaseModel):
    codes: list[str] = Field(min_length=2, max_length=500, description="the lots merged")
    code: str = Field(min_length=3, max_length=64, description="the new code of the result")
    zone: str | None = Field(None, description="where the result is; default the first lot's room")
    at: datetime | None = None


FROM = Query(alias="from", description="ISO 8601; without an offset: the site's time zone")
TO = Query(alias="to", description="ISO 8601, exclusive")


class EpcisJSON(JSONResponse):
    media_type = "application/ld+json"


def _epoch(at: datetime | None, tz: zoneinfo.ZoneInfo) -> float | None:
    return None if at is None else (at if at.tzinfo else at.replace(tzinfo=tz)).timestamp()


async def _run(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kw)
    except LotError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def wake_uplinks(d: Services) -> None:
    """A lot changed: its event goes to the uplinks now, not at their next poll."""
    for f in d.forwarders:
        f.notify([])


def router(d: Services, tokens: Tokens, lots: Lots) -> APIRouter:
    r = APIRouter()
    staff = Depends(tokens.require("staff", "manager"))
    tz = zoneinfo.ZoneInfo(d.cfg.site.timezone)
    epcis = Epcis(lots)

    @r.post("/api/v1/lots/{code}/split")
    async def split_lot(code: str, body: SplitBody, caller: Caller = staff) -> dict[str, Any]:
        await d.commit_pending()  # the parent's stay ends here: its figure counts every reading received
        kids = await _run(split, lots, code, [(c.code, c.quantity) for c in body.children], d.clock.now(),
                          Who(caller.name, caller.role), at=_epoch(body.at, tz))
        wake_uplinks(d)
        return {"lots": kids}

    @r.post("/api/v1/lots/merge", status_code=201)
    async def merge_lots(body: MergeBody, caller: Caller = staff) -> dict[str, Any]:
        await d.commit_pending()
        result: dict[str, Any] = await _run(merge, lots, body.codes, body.code, d.clock.now(),
                                            Who(caller.name, caller.role), zone=body.zone, at=_epoch(body.at, tz))
        wake_uplinks(d)
        return result

    @r.post("/api/v1/lots/{code}/transit", status_code=201)
    async def transit(code: str, request: Request, filename: str = Query("logger.csv", max_length=200),
                      logger: str | None = Query(None, max_length=100), caller: Caller = staff) -> dict[str, Any]:
        """The request body is the logger's file (CSV or JSON, docs/transfers.md); `filename` names it in messages."""
        raw = await request.body()
        if len(raw) > MAX_LOGGER_FILE:
            raise HTTPException(413, f"{filename}: larger than {MAX_LOGGER_FILE // 1024 // 1024} MB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HTTPException(422, f"{filename}: not UTF-8 text (byte {exc.start})") from None
        result: dict[str, Any] = await _run(attach_transit, lots, code, text, filename, d.clock.now(),
                                            Who(caller.name, caller.role), logger=logger)
        return result

    @r.get("/api/v1/lots/{code}/chain")
    async def chain(code: str, caller: Caller = staff) -> dict[str, Any]:
        result: dict[str, Any] = await _run(custody, lots, code, d.clock.now())
        return result

    @r.get("/api/v1/epcis/lots/{code}", response_class=EpcisJSON)
    async def epcis_lot(code: str, caller: Caller = staff) -> EpcisJSON:
        """An EPCISDocument of the lot's events and those of the lots it came from."""
        await _run(lots.get, code)
        return EpcisJSON(await _run(epcis.lot_document, code, d.clock.now()))

    @r.get("/api/v1/epcis/events", response_class=EpcisJSON)
    async def epcis_period(start: datetime = FROM, end: datetime = TO, caller: Caller = staff) -> EpcisJSON:
        """An EPCISDocument of every lot event that happened in [from, to)."""
        a, b = _epoch(start, tz), _epoch(end, tz)
        assert a is not None and b is not None
        if b <= a:
            raise HTTPException(422, "`to` must be after `from`")
        return EpcisJSON(await _run(epcis.period_document, a, b, d.clock.now()))

    return r
