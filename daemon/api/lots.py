"""Lots over HTTP (staff check in, move, check out; every write audited) and the public trace page."""

from __future__ import annotations

import asyncio
import functools
import html
import math
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from daemon.api import transfers
from daemon.api.auth import Caller, Tokens
from daemon.api.services import Services
from daemon.config.catalog import load_catalog
from daemon.lots.qr import qr_png, trace_url
from daemon.lots.shelflife import Q10
from daemon.lots.store import LotError, LotNotFound, Lots, Who, public_record
from daemon.messages import LANGS, render

STATIC = files("daemon.api").joinpath("static")


_AT = Field(None, description="when it happened, if earlier than now (ISO 8601; without an offset: the site's time "
          "zone); not in the future, not before the lot's previous event")


class CheckInBody(BaseModel):
    at: datetime | None = _AT
    code: str = Field(min_length=3, max_length=64, description="the traceability code printed on the boxes")
    commodity: str = Field(description="catalog key, e.g. mandarin")
    zone: str
    quantity: float | None = Field(None, ge=0)
    unit: str | None = Field(None, max_length=20, description="kg, boxes ...")
    origin: str | None = Field(None, max_length=200, description="farm, cooperative or village")
    source: str | None = Field(None, max_length=64, description="receiving: the site id that shipped it here")


class MoveBody(BaseModel):
    zone: str
    at: datetime | None = _AT


class CheckOutBody(BaseModel):
    at: datetime | None = _AT
    destination: str | None = Field(None, max_length=64, description="shipping: the site id it goes to")


def _epoch(at: datetime | None, tz: zoneinfo.ZoneInfo) -> float | None:
    return None if at is None else (at if at.tzinfo else at.replace(tzinfo=tz)).timestamp()


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()
    lots = Lots(d.journal, d.cfg)
    r.include_router(_staff(d, tokens, lots))
    r.include_router(transfers.router(d, tokens, lots))
    r.include_router(_public(d, lots))
    return r


async def _run(fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    """A blocking lot operation in a thread; a LotError becomes its HTTP status."""
    try:
        result: dict[str, Any] = await asyncio.to_thread(fn, *args, **kw)
    except LotError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return result


async def _write(d: Services, fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    """A lot change, then the uplinks are told at once (its EPCIS event need not wait for their next poll).
    Pending readings are committed first: a stay shorter than the commit window would otherwise end with no
    temperature figure, and a longer one without its last minute (a figure that differs from a later report)."""
    await d.commit_pending()
    result = await _run(fn, *args, **kw)
    transfers.wake_uplinks(d)
    return result


def _names(lang: str) -> dict[str, str]:
    return {k: c.name(lang) for k, c in load_catalog().items()}


def _staff(d: Services, tokens: Tokens, lots: Lots) -> APIRouter:
    """Every write is audited with the caller's name; the audit log itself is for managers."""
    r = APIRouter()
    staff = Depends(tokens.require("staff", "manager"))
    tz = zoneinfo.ZoneInfo(d.cfg.site.timezone)

    @r.post("/api/v1/lots", status_code=201)
    async def check_in(body: CheckInBody, caller: Caller = staff) -> dict[str, Any]:
        return await _write(d, lots.check_in, body.code, body.commodity, body.zone, d.clock.now(),
                          Who(caller.name, caller.role), quantity=body.quantity, unit=body.unit, origin=body.origin,
                          at=_epoch(body.at, tz), source=body.source)

    @r.post("/api/v1/lots/{code}/move")
    async def move(code: str, body: MoveBody, caller: Caller = staff) -> dict[str, Any]:
        return await _write(d, lots.move, code, body.zone, d.clock.now(), Who(caller.name, caller.role),
                          at=_epoch(body.at, tz))

    @r.post("/api/v1/lots/{code}/checkout")
    async def check_out(code: str, body: CheckOutBody | None = None, caller: Caller = staff) -> dict[str, Any]:
        return await _write(d, lots.check_out, code, d.clock.now(), Who(caller.name, caller.role),
                          at=_epoch(body.at if body else None, tz), destination=body.destination if body else None)

    @r.get("/api/v1/lots")
    async def lot_list(in_storage: bool | None = None, zone: str | None = None, lang: str | None = None,
                       caller: Caller = staff) -> dict[str, Any]:
        """Each lot with `commodity_name` in `lang` (the site's language by default), from the catalog."""
        names = _names(lang if lang in LANGS else d.cfg.site.language)
        found = await asyncio.to_thread(lots.search, in_storage=in_storage, zone=zone)
        return {"lots": [{**x, "commodity_name": names.get(x["commodity"], x["commodity"])} for x in found]}

    @r.get("/api/v1/commodities")
    async def commodities(lang: str | None = None) -> dict[str, Any]:
        """The catalog's commodities (key and name in `lang`) for the check-in form, in catalog order."""
        names = _names(lang if lang in LANGS else d.cfg.site.language)
        return {"commodities": [{"key": k, "name": n} for k, n in names.items()]}

    @r.get("/api/v1/lots/{code}")
    async def lot_record(code: str, caller: Caller = staff) -> dict[str, Any]:
        await d.commit_pending()
        return await _run(lots.record, code, d.clock.now())

    @r.get("/api/v1/audit")
    async def audit_log(target: str | None = None, limit: int = Query(500, ge=1, le=5000),
                        caller: Caller = Depends(tokens.require("manager"))) -> dict[str, Any]:  # noqa: B008
        return {"entries": await asyncio.to_thread(d.journal.audit.entries, target, limit)}

    # -- the staff page (static; the API calls in it carry the staff token)

    @r.get("/lots", response_class=HTMLResponse)
    async def lots_page() -> HTMLResponse:
        page = STATIC.joinpath("lots.html").read_text(encoding="utf-8")
        return HTMLResponse(page.replace("{{LANG}}", d.cfg.site.language))

    @r.get("/lots.js")
    async def lots_js() -> Response:
        return Response(STATIC.joinpath("lots.js").read_text(encoding="utf-8"),
                        media_type="text/javascript; charset=utf-8")

    return r


def _public(d: Services, lots: Lots) -> APIRouter:
    """What a buyer reaches from the QR code; no login, no names, no phone numbers."""
    r = APIRouter()
    tz = zoneinfo.ZoneInfo(d.cfg.site.timezone)

    @r.get("/api/v1/trace/{code}")
    async def trace_json(code: str) -> dict[str, Any]:
        return public_record(await _run(lots.record, code, d.clock.now()))

    @r.get("/trace/{code}/qr.png")
    async def qr(code: str, request: Request) -> Response:
        await _run(lots.get, code)
        base = d.cfg.api.public_url or str(request.base_url)
        return Response(qr_png(trace_url(base, code)), media_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})

    @r.get("/trace/{code}", response_class=HTMLResponse)
    async def trace_page(code: str, request: Request, lang: str | None = None) -> HTMLResponse:
        lang = lang if lang in LANGS else browser_lang(request.headers.get("accept-language", ""),
                                                         d.cfg.site.language)
        try:
            rec = public_record(await asyncio.to_thread(lots.record, code, d.clock.now()))
        except LotNotFound:
            return HTMLResponse(_page(lang, code, f"<p>{html.escape(render('trace.not_found', lang, code=code))}</p>"),
                                status_code=404)
        vehicle = d.cfg.site.kind == "vehicle"
        return HTMLResponse(_page(lang, code, _body(rec, lang, d.cfg.site.name, tz, vehicle), vehicle))

    return r


def browser_lang(accept: str, default: str) -> str:
    """A buyer's phone says which language it prefers; Chinese unless it asks for English first."""
    for part in accept.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return default


_CSS = """body{font-family:"WenQuanYi Zen Hei","Noto Sans CJK SC",sans-serif;margin:0 auto;max-width:42rem;padding:1rem;
color:#111;line-height:1.45}h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}
.ok{color:#070}.bad{color:#b00}.note{color:#555;font-size:.85rem}.lang{float:right}
.big{font-size:1.6rem;font-weight:bold}"""


VEHICLE_WORDS = ("trace.site", "trace.zone", "trace.stays", "trace.in_storage", "trace.footer")
"""On a vehicle box (`site.kind: vehicle`) these say vehicle, compartment, on board (their `_vehicle` keys)."""


def _page(lang: str, code: str, body: str, vehicle: bool = False) -> str:
    other = "en" if lang.startswith("zh") else "zh-CN"
    e = html.escape
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{e(render("trace.title", lang))} {e(code)}</title><style>{_CSS}</style></head><body>'
            f'<a class="lang" id="other-lang" href="?lang={other}">{e(render("trace.other_language", lang))}</a>'
            f'<h1>{e(render("trace.title", lang))}</h1>{body}'
            f'<p class="note">{e(render("trace.footer_vehicle" if vehicle else "trace.footer", lang))}</p>'
            '</body></html>')


def _text(lang: str, key: str, **params: object) -> str:
    return html.escape(render(key, lang, **params))


def _words(lang: str, vehicle: bool) -> Callable[..., str]:
    """The page's texts, escaped; on a vehicle box VEHICLE_WORDS say vehicle, compartment, on board."""
    def t(key: str, **params: object) -> str:
        return _text(lang, f"{key}_vehicle" if vehicle and key in VEHICLE_WORDS else key, **params)
    return t


def _body(rec: dict[str, Any], lang: str, site: str, tz: zoneinfo.ZoneInfo, vehicle: bool = False) -> str:
    e = html.escape
    t = _words(lang, vehicle)
    zh = lang.startswith("zh")

    def when(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M") if ts else ""

    def num(v: float | None, digits: int = 1) -> str:
        return "–" if v is None else f"{v:.{digits}f}"

    info = rec["commodity_info"] or {}
    name = info.get("name_zh" if zh else "name_en", rec["commodity"])
    rows = [(t("trace.code"), e(rec["code"])), (t("trace.commodity"), e(name)), (t("trace.site"), e(site))]
    if rec["origin"]:
        rows.append((t("trace.origin"), e(rec["origin"])))
    if rec["quantity"] is not None:
        rows.append((t("trace.quantity"), e(f"{rec['quantity']:g} {rec['unit'] or ''}")))
    if info.get("temp_max") is not None:
        rows.append((t("trace.range"), f"{num(info.get('temp_min'))} … {num(info.get('temp_max'))} °C"))
    rows.append((t("trace.checked_in"), when(rec["created"])))
    rows.append((t("trace.checked_out"), when(rec["checked_out"]) if rec["checked_out"] else t("trace.in_storage")))
    out = ["<table id=\"lot\">", *(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows), "</table>"]
    temp = rec["temperature"]
    if temp:
        cls = "ok" if not temp["minutes_out"] and not rec["excursions"] else "bad"
        out.append(f'<p class="{cls} big">{num(temp["min"])} … {num(temp["max"])} °C</p>')
    out.append(f'<h2>{t("trace.stays")}</h2><table id="stays"><tr><th>{t("trace.zone")}</th><th>{t("trace.from")}'
               f'</th><th>{t("trace.to")}</th><th>{t("trace.hours")}</th><th>{t("report.min")}/{t("report.max")}'
               f'</th><th>{t("report.mkt")}</th><th>{t("report.minutes_out")}</th></tr>')
    for s in [*rec["stays"], {"zone_name": render("trace.total", lang), "zone_name_en": render("trace.total", lang),
                              "start": None, "end": None, "hours": rec["hours"], "temperature": temp}]:
        st = s["temperature"] or {}
        out.append(f'<tr><td>{e(s["zone_name"] if zh else s["zone_name_en"])}</td><td>{when(s["start"])}</td>'
                   f'<td>{when(s["end"])}</td><td>{num(s["hours"])}</td>'
                   f'<td>{num(st.get("min"))} / {num(st.get("max"))} °C</td><td>{num(st.get("mkt"), 2)} °C</td>'
                   f'<td>{num(st.get("minutes_out"), 0)}</td></tr>')
    out.append("</table>")
    out.append(f'<h2>{t("trace.excursions")}</h2>')
    if not rec["excursions"]:
        out.append(f'<p class="ok">{t("trace.no_excursions")}</p>')
    else:
        out.append('<table id="excursions">')
        for x in rec["excursions"]:
            state = t(f'trace.state_{x["alarm_state"] or "none"}')
            what = t("trace.above" if x["kind"] == "temp_high" else "trace.below", limit=num(x["limit"]))
            out.append(f'<tr><td>{what}</td><td>{when(x["start"])} – {when(x["end"])}</td>'
                       f'<td>{num(x["minutes"], 0)} {t("report.minutes")}</td><td>{num(x["peak"])} °C</td>'
                       f'<td>{state}</td></tr>')
        out.append("</table>")
    out += _precooling(rec.get("precooling", []), lang, when)
    out.append(f'<h2>{t("trace.shelf_life")}</h2>')
    sl = rec["shelf_life"]
    if sl:
        days = str(math.floor(sl["remaining_days"]))  # round down: never promise a day too many
        out.append(f'<p id="shelf" class="big">{t("trace.shelf_days", days=days)}</p>'
                   f'<p class="note">{t("trace.shelf_note", q10=Q10)}</p>')
    else:
        out.append(f'<p id="shelf">{t("trace.shelf_unknown")}</p>')
    return "".join(out)


def _precooling(runs: list[dict[str, Any]], lang: str, when: Any) -> list[str]:
    """The lot's precooling runs: where the field heat went, how fast, against the product's target."""
    if not runs:
        return []
    t = functools.partial(_text, lang)

    def dur(sec: float | None, predicted: float | None = None) -> str:
        if sec is not None:
            return f"{sec / 60:.0f} min" if sec < 5400 else f"{sec / 3600:.1f} h"
        if predicted is not None:
            return t("precool.predicted", time=dur(predicted))
        return t("precool.not_reached")

    out = [f'<h2>{t("precool.title")}</h2><table id="precool"><tr><th>{t("precool.started")}</th>'
           f'<th>{t("precool.initial")} / {t("precool.air")}</th><th>{t("precool.half")}</th>'
           f'<th>{t("precool.seven_eighths")}</th><th>{t("precool.target")}</th><th></th></tr>']
    for r in runs:
        f = r["figures"] or {}
        temps = " / ".join("–" if f.get(k) is None else f"{f[k]:.1f} °C" for k in ("initial_c", "air_c"))
        target = r["target_s"]
        verdict = (t("precool.no_target") if target is None else
                   f'<span class="bad">{t("precool.too_slow")}</span>' if f.get("too_slow") else
                   f'<span class="ok">{t("precool.in_time")}</span>' if f.get("seven_eighths_s") is not None else
                   t(f'precool.state_{f.get("state", "waiting")}'))
        out.append(f'<tr><td>{when(r["started"])}</td><td>{temps}</td>'
                   f'<td>{dur(f.get("half_s"), f.get("predicted_half_s"))}</td>'
                   f'<td>{dur(f.get("seven_eighths_s"), f.get("predicted_seven_eighths_s"))}</td>'
                   f'<td>{"–" if target is None else dur(target)}</td><td>{verdict}</td></tr>')
    out.append(f'</table><p class="note">{t("precool.note")}</p>')
    return out
