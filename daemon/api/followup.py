"""After the acknowledgement: staff record corrective actions, a manager closes (`daemon/alarms/followup.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from daemon.alarms.followup import ACTION_KINDS, WorkflowError
from daemon.api.alerts import RowId
from daemon.api.auth import Caller, Tokens
from daemon.api.services import Services
from daemon.api.views import alert_json
from daemon.messages import LANGS


class ActionBody(BaseModel):
    kind: str = Field(description=f"what was done to the product: {', '.join(ACTION_KINDS)}")
    text: str = Field(min_length=1, max_length=1000, description="details: where it went, what was checked")


class CloseBody(BaseModel):
    comment: str | None = Field(None, max_length=500, description="the manager's review note")


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()
    staff = Depends(tokens.require("staff", "manager"))
    manager = Depends(tokens.require("manager"))

    @r.post("/api/v1/alerts/{alert_id}/action")
    async def action(alert_id: RowId, body: ActionBody, lang: str | None = None,
                     caller: Caller = staff) -> dict[str, Any]:
        """Record a corrective action (after acknowledging, or on an alarm that fired and ended)."""
        try:
            row = await asyncio.to_thread(d.record_action, alert_id, caller.name, body.kind, body.text)
        except WorkflowError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return alert_json(row, lang if lang in LANGS else d.cfg.site.language)

    @r.post("/api/v1/alerts/{alert_id}/close")
    async def close(alert_id: RowId, body: CloseBody, lang: str | None = None,
                    caller: Caller = manager) -> dict[str, Any]:
        """A manager closes an alarm that is back in range and has its corrective action on record."""
        try:
            row = await asyncio.to_thread(d.close_alarm, alert_id, caller.name, body.comment)
        except WorkflowError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return alert_json(row, lang if lang in LANGS else d.cfg.site.language)

    return r
