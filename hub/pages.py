"""The hub's two pages as server-rendered HTML: the region (for staff) and the public trace of a code.

The trace page is public: it shows places (center and room names), times and temperatures, and never a person's
name, a phone number or an alarm text: those fields are not read here at all.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub.queries import Chain
from hub.texts import t

CSS = ("body{font-family:'WenQuanYi Zen Hei',sans-serif;margin:1em;max-width:60em}table{border-collapse:collapse;"
       "margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}.offline{color:#b00}"
       ".online{color:#070}.lang{float:right}")


def when(ms: int | None, tz: str | None = None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz or "Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


def duration(lang: str, ms: int | None) -> str:
    if ms is None:
        return t(lang, "common.none")
    minutes = ms // 60_000
    return t(lang, "common.hours", h=f"{minutes / 60:.1f}") if minutes >= 120 else t(lang, "common.minutes", m=minutes)


def page(lang: str, title: str, body: str, keep: str = "") -> str:
    """The frame of a page; `keep` is the query string the language link carries along (e.g. a staff token)."""
    other = "en" if lang == "zh-CN" else "zh-CN"
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f'<a class="lang" id="other-lang" href="?lang={other}{html.escape(keep)}">'
            f'{html.escape(t(lang, "trace.other_language"))}</a>'
            f"<h1>{html.escape(title)}</h1>{body}</body></html>")


def table(head: list[str], body: list[list[str]], ident: str) -> str:
    """A table; `head` is plain text, cells are HTML the caller escaped."""
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
    return f'<table id="{ident}"><tr>{ths}</tr>{trs}</table>'


def region(lang: str, centers: list[dict[str, Any]], alarms: list[dict[str, Any]], rooms: list[dict[str, Any]],
           refused: int, keep: str = "") -> str:
    """Centers with state and lag, vehicles apart (the same, their compartments), the region's open alarms, and
    every cold room's capacity and occupancy (`rooms` leaves vehicles out)."""
    e = html.escape
    state = {"online": t(lang, "region.online"), "offline": t(lang, "region.offline")}

    def sites(kinds: tuple[str, ...]) -> list[list[str]]:
        return [[e(c["name"] or c["site"]), f'<span class="{e(c["state"] or "unknown")}">'
                 f'{e(state.get(c["state"] or "", t(lang, "region.unknown")))}</span>', e(duration(lang, c["lag_ms"])),
                 e(when(c["last_ts"], c["timezone"])), str(c["rooms"])]
                for c in centers if (c.get("kind") or "center") in kinds]

    out = f"<h2>{e(t(lang, 'region.centers'))}</h2>" + table(
        [t(lang, k) for k in ("region.site", "region.state", "region.lag", "region.last_seen", "region.rooms")],
        sites(("center",)), "centers")
    vehicles = sites(("vehicle",))
    if vehicles:
        out += f"<h2>{e(t(lang, 'region.vehicles'))}</h2>" + table(
            [t(lang, k) for k in ("region.vehicle", "region.state", "region.lag", "region.last_seen",
                                  "region.compartments")], vehicles, "vehicles")
    out += f"<h2>{e(t(lang, 'region.alarms'))}</h2>"
    if not alarms:
        out += f'<p id="no-alarms">{e(t(lang, "region.no_alarms"))}</p>'
    else:
        out += table([t(lang, k) for k in ("region.site", "region.zone", "region.alarm", "region.value",
                                          "region.opened", "region.state", "region.acked_by")],
                     [[e(a["center"] or a["site"]), e(a["room"] or a["zone"] or ""), e(a["kind"]),
                       "" if a["value"] is None else f"{a['value']:g}", e(when(a["opened"])),
                       e(t(lang, f"region.{a['state']}")), e(a["acked_by"] or "")] for a in alarms], "alarms")
    out += f"<h2>{e(t(lang, 'region.capacity'))}</h2>" + table(
        [t(lang, k) for k in ("region.site", "region.zone", "region.capacity_of", "region.occupied", "region.free",
                              "region.lots")],
        [[e(r["center"] or r["site"]), e(r["name"] or r["zone"]),
          "—" if r["capacity"] is None else e(f"{r['capacity']:g} {r['unit'] or ''}"),
          e(f"{r['occupied']:g} {r['unit'] or ''}"), "—" if r["free"] is None else e(f"{r['free']:g}"),
          str(r["lots"])] for r in rooms], "capacity")
    if refused:
        out += f'<p id="refused">{e(t(lang, "region.refused", n=refused))}</p>'
    return page(lang, t(lang, "region.title"), out, keep)


def trace(lang: str, chain: Chain, places: dict[tuple[str, str | None], str]) -> str:
    """The legs of a code's chain: where it was (center and room names only), when, and at what temperature."""
    e = html.escape
    if not chain.events:
        missing = e(t(lang, "trace.not_found", code=chain.code))
        return page(lang, t(lang, "trace.title"), f'<p id="not-found">{missing}</p>')
    out = f"<p>{e(t(lang, 'trace.code'))}: <b id=\"code\">{e(chain.code)}</b></p>"
    parents = [lot for lot in chain.lots if lot != chain.code]
    if parents:
        out += f"<p>{e(t(lang, 'trace.from_lots'))}: {e(', '.join(parents))}</p>"
    rows = []
    for leg in chain.legs:
        where = places.get((leg["site"], leg["zone"])) or places.get((leg["site"], None)) or leg["site"]
        if leg["kind"] == "transit" and not leg.get("destination"):  # checked out, not to another center
            what = t(lang, "trace.out")
        elif leg["kind"] == "transit":
            dest = places.get((leg["destination"], None)) or leg["destination"]
            what, where = t(lang, "trace.transit"), f"{where} → {dest}"
        elif leg["kind"] == "vehicle":  # a vehicle box's compartment, from loading to unloading
            what = t(lang, "trace.vehicle")
        else:
            what = t(lang, "trace.stay")
        temp = leg["temperature"] or {}
        figures = " / ".join("—" if temp.get(k) is None else f"{temp[k]:.1f}" for k in ("min", "mean", "max"))
        open_end = t(lang, {"stay": "trace.still_here", "vehicle": "trace.on_board"}.get(leg["kind"], "common.none"))
        mkt = leg.get("mkt")
        outside = leg.get("minutes_outside")
        rows.append([e(what), e(where), e(when(leg["since"])), e(when(leg["until"]) if leg["until"] else open_end),
                     e(figures + (" °C" if temp else "")), e("—" if mkt is None else f"{mkt:.1f} °C"),
                     e("—" if outside is None else t(lang, "trace.outside_of", m=f"{outside:g}",
                                                     n=len(leg.get("excursions") or [])))])
    out += table([t(lang, k) for k in ("trace.leg", "trace.place", "trace.since", "trace.until", "trace.temperature",
                                       "trace.mkt", "trace.outside")], rows, "legs")
    return page(lang, t(lang, "trace.title"), out + f"<p>{e(t(lang, 'trace.footer'))}</p>")
