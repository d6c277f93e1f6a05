"""FastAPI application: health, live zones, readings, alerts, and the zones page."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from importlib.resources import files
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from daemon import __version__
from daemon.api import history as history_api
from daemon.api import lots as lots_api
from daemon.api import metrics as metrics_api
from daemon.api import reports as reports_api
from daemon.api import settings as settings_api
from daemon.api.auth import Caller, Tokens
from daemon.api.views import alert_json, reading_json, zones_json
from daemon.messages import LANGS, catalog

if TYPE_CHECKING:
    from daemon.app.runtime import Daemon

STATIC = files("daemon.api").joinpath("static")
# Journal ids are SQLite INTEGERs: a larger number in a URL is a 422, not an OverflowError (500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


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


class AckBody(BaseModel):
    comment: str | None = Field(None, max_length=500, description="what was done, for the record")


class MuteBody(BaseModel):
    minutes: float = Field(gt=0, le=7 * 24 * 60, description="how long no new alarms are raised")
    reason: str = Field(min_length=1, max_length=200)


def create_app(d: Daemon) -> FastAPI:
    app = FastAPI(title="coldchain-monitor", version=__version__, docs_url="/api/docs", redoc_url=None)
    tokens = Tokens(d.cfg.api)
    app.include_router(reports_api.router(d, tokens))
    app.include_router(history_api.router(d))
    app.include_router(lots_api.router(d, tokens))
    app.include_router(metrics_api.router(d))
    app.include_router(settings_api.router(d, tokens))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's own 422, but ASCII-escaped: it echoes the input, and a lone surrogate in it made the
        UTF-8 encoding of the error itself fail with a 500."""
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        now = d.clock.now()
        check = {"journal_mode": d.journal.journal_mode()}
        stats = d.stats.snapshot()
        ok = check["journal_mode"] == "wal" and stats.get("journal_write_errors", 0) == 0
        return {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "site": d.cfg.site.id,
            "time": now,
            "uptime_s": round(now - d.started_at, 1),
            "journal": {"path": str(d.journal.path), **check,
                        "last_id": await asyncio.to_thread(d.journal.readings.max_id)},
            "disk_reserve": d.reserve.state,
            "sensors_online": sum(1 for s in d.live.sensors.values() if s.online),
            "open_alerts": len(await asyncio.to_thread(d.journal.alerts.find, open_only=True)),
            "uplinks": [await asyncio.to_thread(f.snapshot) for f in d.forwarders],
            "counters": stats,
        }

    @app.get("/api/v1/zones")
    async def zones(lang: str = Query(None, description="zh-CN or en")) -> dict[str, Any]:
        lang = lang if lang in LANGS else d.cfg.site.language
        open_alerts = await asyncio.to_thread(d.journal.alerts.find, open_only=True)
        return zones_json(d, open_alerts, lang)

    @app.get("/api/v1/readings")
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

    @app.get("/api/v1/alerts")
    async def alerts(
        open: bool = False, zone: str | None = None, lang: str | None = None, limit: int = Query(200, ge=1, le=5000)
    ) -> dict[str, Any]:
        lang = lang if lang in LANGS else d.cfg.site.language
        rows = await asyncio.to_thread(d.journal.alerts.find, open_only=open, zone=zone, limit=limit)
        return {"alerts": [alert_json(d, a, lang) for a in rows]}

    @app.post("/api/v1/alerts/{alert_id}/ack")
    async def ack(
        alert_id: RowId, body: AckBody, lang: str | None = None,
        caller: Caller = Depends(tokens.require("staff", "manager")),  # noqa: B008
    ) -> dict[str, Any]:
        row = await asyncio.to_thread(d.alerts.acknowledge, alert_id, caller.name, body.comment, "web")
        if row is None:
            current = await asyncio.to_thread(d.journal.alerts.get, alert_id)
            if current is None:
                raise HTTPException(404, f"no alarm {alert_id}")
            raise HTTPException(409, f"alarm {alert_id} is {current.state}; nothing to acknowledge")
        return alert_json(d, row, lang if lang in LANGS else d.cfg.site.language)

    @app.post("/api/v1/zones/{zone_id}/mute")
    async def mute(
        zone_id: str, body: MuteBody,
        caller: Caller = Depends(tokens.require("staff", "manager", "installer")),  # noqa: B008
    ) -> dict[str, Any]:
        if zone_id not in {z.id for z in d.cfg.zones}:
            raise HTTPException(404, f"no zone {zone_id!r}")
        mid = await asyncio.to_thread(d.mute, zone_id, body.minutes * 60, body.reason, caller.name)
        return {"id": mid, "zone": zone_id, "until": d.clock.now() + body.minutes * 60}

    @app.delete("/api/v1/mutes/{mute_id}")
    async def unmute(
        mute_id: RowId, caller: Caller = Depends(tokens.require("staff", "manager", "installer")),  # noqa: B008
    ) -> dict[str, Any]:
        if not await asyncio.to_thread(d.unmute, mute_id, caller.name):
            raise HTTPException(404, f"no active mute {mute_id}")
        return {"id": mute_id, "ended": True}

    @app.get("/api/v1/mutes")
    async def mutes(active: bool = True) -> dict[str, Any]:
        rows = await asyncio.to_thread(d.journal.mutes.find, active_at=d.clock.now() if active else None)
        return {"mutes": [{"id": i, "zone": z, "start": a, "end": b, "reason": r, "who": w}
                          for i, z, a, b, r, w in rows]}

    @app.get("/api/v1/alerts/{alert_id}")
    async def alert(alert_id: RowId, lang: str | None = None) -> dict[str, Any]:
        row = await asyncio.to_thread(d.journal.alerts.get, alert_id)
        if row is None:
            raise HTTPException(404, f"no alarm {alert_id}")
        out = alert_json(d, row, lang if lang in LANGS else d.cfg.site.language)
        events = await asyncio.to_thread(d.journal.alerts.events, alert_id)
        out["events"] = [{"ts": ts, "state": st, "who": who, "comment": c} for ts, st, who, c in events]
        msgs = await asyncio.to_thread(d.journal.outbox.find, alert_id=alert_id)
        deliveries = {m.id: await asyncio.to_thread(d.journal.outbox.delivery, m.id) for m in msgs}
        out["messages"] = [{"contact": m.contact, "channel": m.notifier, "state": m.state, "created": m.created,
                            "sent_at": m.sent_at, "kind": m.msg_key,
                            "delivered": None if deliveries[m.id][0] is None else bool(deliveries[m.id][0]),
                            "delivery_detail": deliveries[m.id][1]} for m in msgs]
        return out

    @app.get("/api/v1/messages/{lang}")
    async def messages(lang: str) -> dict[str, str]:
        if lang not in LANGS:
            raise HTTPException(404, f"unknown language {lang!r}; known: {', '.join(LANGS)}")
        return {k: v for k, v in catalog(lang).items() if k.split(".")[0] in ("page", "state", "kind")}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        html = STATIC.joinpath("index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("{{LANG}}", d.cfg.site.language))

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in ("app.js", "style.css"):
            raise HTTPException(404)
        body = STATIC.joinpath(name).read_text(encoding="utf-8")
        return Response(body, media_type=_TYPES[name[name.rindex("."):]])

    return app
