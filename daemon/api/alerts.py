"""Alarms and maintenance mutes: reads are open on the box's LAN; acknowledging, corrective actions, closing
and muting need a token, and the caller's name goes into the journal with the action.

The HACCP follow-up (`daemon/alarms/followup.py`): staff acknowledge (a comment is required unless
`alarms.ack_comment_required: false`) and record corrective actions; a manager closes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from daemon.alarms.followup import WorkflowError
from daemon.api.alert_filters import StateName, alert_filter
from daemon.api.auth import Caller, Tokens
from daemon.api.services import Services
from daemon.api.views import action_json, alert_json
from daemon.messages import LANGS, render
from daemon.storage.alert_query import AlertFilter, AlertPage
from daemon.storage.alerts import AlertRow

# Journal ids are SQLite INTEGERs: a larger number in a URL is a 422, not an OverflowError (500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
StateParam = Annotated[StateName | None, Query(description="closed: a manager closed it; resolved: not yet")]


class AckBody(BaseModel):
    comment: str | None = Field(None, max_length=500, description="what was done, for the record")


class MuteBody(BaseModel):
    minutes: float = Field(gt=0, le=7 * 24 * 60, description="how long no new alarms are raised")
    reason: str = Field(min_length=1, max_length=200)


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()
    staff = Depends(tokens.require("staff", "manager"))
    staff_or_installer = Depends(tokens.require("staff", "manager", "installer"))

    _alarm_list(r, d)

    @r.post("/api/v1/alerts/{alert_id}/ack")
    async def ack(alert_id: RowId, body: AckBody, lang: str | None = None, caller: Caller = staff) -> dict[str, Any]:
        try:
            row = await asyncio.to_thread(d.acknowledge, alert_id, caller.name, body.comment, "web")
        except WorkflowError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        if row is None:
            current = await asyncio.to_thread(d.journal.alerts.get, alert_id)
            if current is None:
                raise HTTPException(404, f"no alarm {alert_id}")
            raise HTTPException(409, f"alarm {alert_id} is {current.state}; nothing to acknowledge")
        return alert_json(row, lang if lang in LANGS else d.cfg.site.language)

    @r.post("/api/v1/zones/{zone_id}/mute")
    async def mute(zone_id: str, body: MuteBody, caller: Caller = staff_or_installer) -> dict[str, Any]:
        if zone_id not in {z.id for z in d.cfg.zones}:
            raise HTTPException(404, f"no zone {zone_id!r}")
        mid = await asyncio.to_thread(d.mute, zone_id, body.minutes * 60, body.reason, caller.name)
        return {"id": mid, "zone": zone_id, "until": d.clock.now() + body.minutes * 60}

    @r.delete("/api/v1/mutes/{mute_id}")
    async def unmute(mute_id: RowId, caller: Caller = staff_or_installer) -> dict[str, Any]:
        if not await asyncio.to_thread(d.unmute, mute_id, caller.name):
            raise HTTPException(404, f"no active mute {mute_id}")
        return {"id": mute_id, "ended": True}

    @r.get("/api/v1/mutes")
    async def mutes(active: bool = True) -> dict[str, Any]:
        rows = await asyncio.to_thread(d.journal.mutes.find, active_at=d.clock.now() if active else None)
        return {"mutes": [{"id": i, "zone": z, "start": a, "end": b, "reason": r, "who": w}
                          for i, z, a, b, r, w in rows]}

    @r.get("/api/v1/alerts/{alert_id}")
    async def alert(alert_id: RowId, lang: str | None = None) -> dict[str, Any]:
        row = await asyncio.to_thread(d.journal.alerts.get, alert_id)
        if row is None:
            raise HTTPException(404, f"no alarm {alert_id}")
        return await _detail(d, row, lang if lang in LANGS else d.cfg.site.language)

    return r


def _alarm_list(r: APIRouter, d: Services) -> None:
    """GET /api/v1/alerts: the alarm list, filtered and paged by the journal (`daemon/storage/alert_query.py`)."""

    @r.get("/api/v1/alerts")
    async def alerts(
        open: bool = Query(False, description="only alarms not resolved (pending, firing, acknowledged)"),
        zone: str | None = Query(None, description="the room's id; `_site` for the box's own alarms"),
        room: str | None = Query(None, description="the same as `zone`"),
        state: StateParam = None,
        kind: str | None = Query(None, description="the alarm kind as stored, e.g. temp_high"),
        since: str | None = Query(None, description="started at or after: epoch seconds or ISO 8601"),
        until: str | None = Query(None, description="started before: epoch seconds or ISO 8601"),
        fired: bool = Query(False, description="only alarms that fired (not those cancelled within their delay)"),
        before: int | None = Query(None, ge=1, le=2**63 - 1, description="the cursor: ids below it (`next`)"),
        lang: str | None = None,
        limit: int = Query(200, ge=1, le=5000),
    ) -> dict[str, Any]:
        f = alert_filter(open_only=open, zone=zone, room=room, state=state, kind=kind, since=since, until=until,
                         fired=fired, before=before)
        lang = lang if lang in LANGS else d.cfg.site.language
        page, kinds = await asyncio.to_thread(_list, d, f, limit)
        return {"alerts": [alert_json(a, lang) for a in page.rows], "next": page.next,
                "kinds": [{"kind": k, "text": render(f"kind.{k}", lang)} for k in kinds]}


def _list(d: Services, f: AlertFilter, limit: int) -> tuple[AlertPage, list[str]]:
    """One page of the alarm list and the kinds its filter finds, read on one worker thread."""
    return d.journal.alert_query.page(f, limit), d.journal.alert_query.kinds(f)


async def _detail(d: Services, row: AlertRow, lang: str) -> dict[str, Any]:
    """One alarm with its corrective actions, audit trail and messages."""
    alert_id = row.id
    out = alert_json(row, lang)
    out["actions"] = [action_json(x, lang) for x in await asyncio.to_thread(d.journal.alerts.actions, alert_id)]
    events = await asyncio.to_thread(d.journal.alerts.events, alert_id)
    out["events"] = [{"ts": ts, "state": st, "who": who, "comment": c} for ts, st, who, c in events]
    msgs = await asyncio.to_thread(d.journal.outbox.find, alert_id=alert_id)
    deliveries = {m.id: await asyncio.to_thread(d.journal.outbox.delivery, m.id) for m in msgs}
    out["messages"] = [{"contact": m.contact, "channel": m.notifier, "state": m.state, "created": m.created,
                        "sent_at": m.sent_at, "kind": m.msg_key,
                        "delivered": None if deliveries[m.id][0] is None else bool(deliveries[m.id][0]),
                        "delivery_detail": deliveries[m.id][1]} for m in msgs]
    return out
