"""Compliance report per zone and period: statistics, MKT, excursions, completeness.

Built from the journal alone (so the CLI can make it without a running daemon) and
rendered as JSON, CSV (UTF-8 with BOM, opens in Excel with Chinese intact) or a
self-contained print-ready HTML page that `daemon.reports.pdf` prints to PDF with Chromium.
Days, weeks (Monday to Sunday) and months are calendar periods in the site's time zone;
a period that has not ended yet stops at now, so today's completeness is not understated.
"""

from __future__ import annotations

import csv
import html
import io
import math
import zoneinfo
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from daemon import __version__
from daemon.alarms.rules import zone_limits
from daemon.config.catalog import Commodity
from daemon.config.schema import AppConfig
from daemon.messages import render
from daemon.reports import history
from daemon.reports.excursions import Excursion, excursions
from daemon.reports.mkt import DH_R, Rollup, Segment, Summary, combine, summarize
from daemon.reports.verdict import VERDICT_KEY, Gap, Verdict, gaps, verdict
from daemon.storage import rollups
from daemon.storage.journal import Journal

PeriodKind = Literal["day", "week", "month", "custom"]
DEFAULT_INTERVAL = 60.0
ROLLUP_MS = rollups.FIVE_MIN_MS


class ReportError(ValueError):
    """A report cannot be made as asked (unknown zone, bad period); the message says why."""


def parse_when(value: str, tz: zoneinfo.ZoneInfo) -> tuple[datetime, bool]:
    """A date or date-time in the site's zone (explicit offsets win); True when it was a bare date."""
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=tz), True
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"{value!r} is not a date (2026-11-20) or date-time (2026-11-20T08:00)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)), False


def period_bounds(kind: PeriodKind, tz: zoneinfo.ZoneInfo, now: float, *, day: str | None = None,
                  start: str | None = None, end: str | None = None) -> tuple[float, float]:
    """[start, end) epoch seconds. For `custom`, a bare `end` date is inclusive (the whole day)."""
    if kind == "custom":
        if not start or not end:
            raise ReportError("a custom period needs both a start and an end")
        a, _ = parse_when(start, tz)
        b, bare = parse_when(end, tz)
        if bare:
            b = datetime.combine(b.date() + timedelta(days=1), datetime.min.time(), tz)
        lo, hi = a.timestamp(), b.timestamp()
    else:
        ref = parse_when(day, tz)[0].date() if day else datetime.fromtimestamp(now, tz).date()
        if kind == "day":
            first, last = ref, ref + timedelta(days=1)
        elif kind == "week":
            first = ref - timedelta(days=ref.weekday())
            last = first + timedelta(days=7)
        elif kind == "month":
            first = ref.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1)
        else:
            raise ReportError(f"unknown period {kind!r}; use day, week, month or custom")
        lo = datetime.combine(first, datetime.min.time(), tz).timestamp()
        hi = datetime.combine(last, datetime.min.time(), tz).timestamp()
    if hi <= lo:
        raise ReportError("the period ends before it starts")
    if lo >= now:
        raise ReportError("the period has not started yet")
    return lo, min(hi, now)


def _samples(journal: Journal, sid: int, start: float, end: float,
             max_hold: float) -> tuple[list[tuple[float, float]], list[Rollup]]:
    """Good readings in [start, end) plus the last one before `start` that still holds into it,
    and the 5-minute rollups of readings retention deleted in the period (one read transaction,
    so a retention pass cannot move readings between the two)."""
    with journal.snapshot():
        before = journal.read(
            "SELECT ts_ms, value FROM readings WHERE series = ? AND quality = 0 AND value IS NOT NULL "
            "AND ts_ms < ? AND ts_ms >= ? ORDER BY ts_ms DESC LIMIT 1",
            (sid, round(start * 1000), round((start - max_hold) * 1000)))
        rows = journal.read(
            "SELECT ts_ms, value FROM readings WHERE series = ? AND quality = 0 AND value IS NOT NULL "
            "AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms", (sid, round(start * 1000), round(end * 1000)))
        rolled = journal.read(
            f"SELECT * FROM ({rollups.ARCHIVED_5M}) ORDER BY 1",  # noqa: S608 - ARCHIVED_5M is rollups' own SQL; values are bound
            {"sid": sid, "a": round(start * 1000) - ROLLUP_MS, "b": round(end * 1000)})
    return ([(ts / 1000, float(v)) for ts, v in [*before, *rows]],
            [Rollup(b / 1000, ROLLUP_MS / 1000, n, lo, sm / n, hi) for b, lo, sm, hi, n in rolled])


@dataclass
class QuantityStats:
    """One quantity of a zone: per sensor and for the zone as a whole."""

    quantity: str
    low: float | None
    high: float | None
    zone: Summary
    sensors: dict[str, Summary]
    tracks: dict[str, list[Segment]] = field(default_factory=dict, repr=False)


def zone_stats(journal: Journal, cfg: AppConfig, zone: str, quantity: str, start: float, end: float,
               low: float | None, high: float | None) -> QuantityStats | None:
    """Statistics of one quantity in one zone over [start, end); None when the zone never had it."""
    sensors = {s.id: s for s in cfg.sensors_of(zone)} if zone in {z.id for z in cfg.zones} else {}
    parts: dict[str, tuple[Summary, list[Segment]]] = {}
    for sid, (_, _, sensor, _) in sorted(journal.readings.series_ids(zone=zone, quantity=quantity).items(),
                                         key=lambda kv: kv[1][2]):
        sc = sensors.get(sensor)
        interval = sc.interval if sc else DEFAULT_INTERVAL
        hold = sc.stale_after_s if sc else 5 * DEFAULT_INTERVAL
        samples, rolled = _samples(journal, sid, start, end, hold)
        parts[sensor] = summarize(samples, start, end, interval=interval, max_hold=hold, low=low, high=high,
                                  rolled=rolled)
    for s in sensors.values():  # a configured sensor that never reported still counts as expected
        if s.id not in parts and quantity == "temperature":
            parts[s.id] = summarize([], start, end, interval=s.interval, max_hold=s.stale_after_s, low=low, high=high)
    if not parts:
        return None
    whole = combine(list(parts.values()), low, high, end - start)
    return QuantityStats(quantity, low, high, whole, {k: v[0] for k, v in parts.items()},
                         {k: v[1] for k, v in parts.items()})


@dataclass
class Report:
    site_id: str
    site_name: str
    zone: str
    zone_name: str
    zone_name_en: str
    commodity: Commodity | None
    tz: str
    period: str
    start: float
    end: float
    generated: float
    temperature: QuantityStats | None
    humidity: QuantityStats | None
    excursions: list[Excursion]
    device_alarms: list[Excursion]
    chart: list[history.Series] = field(default_factory=list, repr=False)
    verdict: Verdict = "insufficient_data"
    min_completeness: float = 95.0
    gaps: list[Gap] = field(default_factory=list)
    replayed: int = 0
    """Readings in the period whose time is when a broker replayed them, not when they were measured."""
    precooling: list[dict[str, Any]] = field(default_factory=list)
    """Precooling runs that started in the period (a precooling room), oldest first, with their figures at their end
    (None while a run is still open: docs/precooling.md)."""

    def local(self, ts: float | None) -> str:
        if ts is None:
            return ""
        return datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M")

    def json(self) -> dict[str, Any]:
        def q(st: QuantityStats | None) -> dict[str, Any] | None:
            if st is None:
                return None
            return {"low": st.low, "high": st.high, "zone": _rounded(asdict(st.zone)),
                    "sensors": {k: _rounded(asdict(v)) for k, v in st.sensors.items()}}

        c = self.commodity
        return {
            "site": {"id": self.site_id, "name": self.site_name},
            "zone": {"id": self.zone, "name": self.zone_name, "name_en": self.zone_name_en},
            "commodity": None if c is None else {"key": c.key, "name_en": c.name_en, "name_zh": c.name_zh,
                                                 "temp_min": c.temp_min, "temp_max": c.temp_max},
            "period": {"kind": self.period, "start": self.start, "end": self.end, "timezone": self.tz,
                       "start_local": self.local(self.start), "end_local": self.local(self.end)},
            "generated": self.generated, "version": __version__,
            "mkt_method": {"standard": "USP <1079>", "dh_r_kelvin": DH_R, "weighting": "time-weighted, sample-and-hold "
                           "up to each sensor's no-data limit; longer gaps excluded"},
            "temperature": q(self.temperature), "humidity": q(self.humidity),
            "excursions": [e.json() for e in self.excursions],
            "excursion_count": len(self.excursions),
            "acknowledged_count": sum(1 for e in self.excursions if e.acked is not None),
            "device_alarms": [e.json() for e in self.device_alarms],
            "verdict": {"status": self.verdict, "min_completeness": self.min_completeness,
                        "completeness": None if self.temperature is None else self.temperature.zone.completeness},
            "gaps": [{"sensor": g.sensor, "start": g.start, "end": g.end, "minutes": round(g.minutes, 1),
                      "start_local": self.local(g.start), "end_local": self.local(g.end)} for g in self.gaps],
            "replayed_readings": self.replayed,
            "precooling": self.precooling,
        }


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}


def compliance(journal: Journal, cfg: AppConfig, zone: str, start: float, end: float, now: float,
               period: str = "custom") -> Report:
    """The compliance report of one zone over [start, end)."""
    try:
        z = cfg.zone(zone)
    except StopIteration:
        raise ReportError(f"unknown zone {zone!r}; known: {', '.join(x.id for x in cfg.zones)}") from None
    com = cfg.commodity(zone)
    lim = zone_limits(z, com)
    temp = zone_stats(journal, cfg, zone, "temperature", start, end, lim.temp_low, lim.temp_high)
    hum = zone_stats(journal, cfg, zone, "humidity", start, end, lim.rh_low, lim.rh_high)
    exc = excursions(journal, start=start, end=end, now=now, zone=zone)
    tz = zoneinfo.ZoneInfo(cfg.site.timezone)
    offset = int((datetime.fromtimestamp(start, tz).utcoffset() or timedelta()).total_seconds())
    chart = history.history(journal, start=start, end=end, zone=zone, quantity="temperature", max_points=300,
                            offset_s=offset)
    product = [e for e in exc if e.product]
    floor = cfg.reports.min_completeness
    report = Report(cfg.site.id, cfg.site.name, zone, z.name, z.name_en or z.name, com, cfg.site.timezone, period,
                  start, end, now, temp, hum, product, [e for e in exc if not e.product], chart,
                  verdict(temp.zone if temp else None, len(product), floor), floor,
                  gaps(temp.tracks, start, end) if temp else [],
                  sum(len(journal.readings.replayed_times(sid, start, end)) for sid in
                      journal.readings.series_ids(zone=zone)))
    report.precooling = precool_runs(journal, zone, start, end)
    return report


def precool_runs(journal: Journal, zone: str, start: float, end: float) -> list[dict[str, Any]]:
    """The room's precooling runs that started in [start, end), oldest first, as stored (figures of ended runs)."""
    runs = [r for r in journal.precool.find(zone=zone, limit=10_000) if start <= r.started < end]
    return [{"id": r.id, "lot": r.lot, "commodity": r.commodity, "started": r.started, "ended": r.ended,
             "end_reason": r.end_reason, "target_s": r.target_s, "figures": r.figures} for r in reversed(runs)]


# ---------------------------------------------------------------- CSV

_STAT_FIELDS = ("count", "completeness", "min", "max", "mean", "mkt", "minutes_above", "minutes_below",
                "minutes_out", "gap_minutes")


def _cell(v: object) -> object:
    return "" if v is None else (round(v, 2) if isinstance(v, float) else v)


def to_csv(r: Report, lang: str = "zh-CN") -> str:
    """Three blocks: what the report covers, statistics per sensor, excursions."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    def t(key: str) -> str:
        return render(key, lang)

    w.writerow([t("report.title")])
    w.writerow([t("report.site"), r.site_name, r.site_id])
    w.writerow([t("report.zone"), r.zone_name if lang.startswith("zh") else r.zone_name_en, r.zone])
    w.writerow([t("report.commodity"), r.commodity.name(lang) if r.commodity else ""])
    w.writerow([t("report.period"), r.local(r.start), r.local(r.end), r.tz])
    w.writerow([t("report.generated"), r.local(r.generated), f"coldchain {__version__}"])
    w.writerow([t("report.summary"), r.verdict, _verdict_text(r, lang)])
    if r.replayed:
        w.writerow(["replayed", r.replayed, render("report.replayed", lang, n=r.replayed)])
    w.writerow([])
    w.writerow(["quantity", "sensor", "low", "high", *_STAT_FIELDS])
    for st in (r.temperature, r.humidity):
        if st is None:
            continue
        for name, s in [("*", st.zone), *st.sensors.items()]:
            w.writerow([st.quantity, name, _cell(st.low), _cell(st.high),
                        *(_cell(getattr(s, f)) if not (f == "mkt" and st.quantity != "temperature") else ""
                          for f in _STAT_FIELDS)])
    w.writerow([])
    w.writerow(["excursion", "kind", "sensor", "start", "end", "minutes", "peak", "limit", "told", "acked",
                "acked_by", "comment", "actions", "duration_minutes"])
    for e in [*r.excursions, *r.device_alarms]:
        told = "; ".join(sorted({f"{m['contact']} ({m['channel']}, {m['state']}"
                                 f"{', delivered' if m.get('delivered') else ''})" for m in e.told}))
        w.writerow([e.id, e.kind, e.sensor or "", r.local(e.start), r.local(e.end), _cell(e.minutes),
                    _cell(e.peak), _cell(e.limit), told, r.local(e.acked), e.acked_by or "", e.comment or "",
                    " | ".join(e.handling(lang)[1 if e.comment else 0:]), _cell(e.duration_minutes)])
    w.writerow([])
    w.writerow(["gap", "sensor", "start", "end", "minutes"])
    for i, g in enumerate(r.gaps, 1):
        w.writerow([i, g.sensor, r.local(g.start), r.local(g.end), _cell(g.minutes)])
    return buf.getvalue()


def _verdict_text(r: Report, lang: str) -> str:
    z = r.temperature.zone if r.temperature else None
    done = z.completeness if z and z.completeness is not None else 0.0
    return render(VERDICT_KEY[r.verdict], lang, minutes=f"{z.minutes_out if z else 0:.0f}", count=len(r.excursions),
                  completeness=f"{done:.1f}", min=f"{r.min_completeness:g}", gaps=len(r.gaps))


# ---------------------------------------------------------------- HTML

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; font-size: 10pt;
       color: #111; margin: 0; }
h1 { font-size: 16pt; margin: 0 0 4pt; } h2 { font-size: 12pt; margin: 14pt 0 4pt; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0; page-break-inside: auto; }
th, td { border: 1px solid #bbb; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #eee; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr { page-break-inside: avoid; } .meta td:first-child { width: 22%; color: #444; }
.bad { color: #b00; font-weight: bold; } .ok { color: #070; } .note { color: #444; font-size: 8.5pt; }
svg { width: 100%; height: auto; border: 1px solid #ccc; }
"""


def _f(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _svg_chart(r: Report) -> str:
    """The period's temperature (bucket means) on axes: °C ticks at the left, site-time ticks below, the storage
    limits dashed in red and labelled; a reviewer reads values off it without the table."""
    pts = [(row[0], row[2]) for s in r.chart for row in s.rows]
    if not pts or r.temperature is None:
        return ""
    w, h, left, right, top, bottom = 700.0, 220.0, 46.0, 12.0, 10.0, 30.0
    limits = [x for x in (r.temperature.low, r.temperature.high) if x is not None]
    lo_v, hi_v = min([v for _, v in pts] + limits), max([v for _, v in pts] + limits)
    if hi_v - lo_v < 1:
        lo_v, hi_v = lo_v - 0.5, hi_v + 0.5
    lo_v, hi_v = lo_v - (hi_v - lo_v) * 0.05, hi_v + (hi_v - lo_v) * 0.05
    span_t = max(1.0, r.end - r.start)

    def x(t: float) -> float:
        return left + (t - r.start) / span_t * (w - left - right)

    def y(v: float) -> float:
        return top + (hi_v - v) / (hi_v - lo_v) * (h - top - bottom)

    base = h - bottom
    parts = [f'<svg viewBox="0 0 {w:.0f} {h:.0f}" xmlns="http://www.w3.org/2000/svg" role="img" id="chart">',
             f'<line x1="{left}" x2="{left}" y1="{top}" y2="{base}" stroke="#333"/>'
             f'<line x1="{left}" x2="{w - right}" y1="{base}" y2="{base}" stroke="#333"/>',
             f'<text x="4" y="{top + 8:.0f}" font-size="9">°C</text>']
    for v in _ticks(lo_v, hi_v):
        parts.append(f'<line x1="{left - 3}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 5}" y="{y(v) + 3:.1f}" font-size="9" text-anchor="end">{v:g}</text>')
    n = 6
    for i in range(n + 1):
        t = r.start + span_t * i / n
        anchor = "start" if i == 0 else "end" if i == n else "middle"
        label = html.escape(r.local(t)[5:] if span_t > 86400 else r.local(t)[11:])
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{base}" y2="{base + 4}" stroke="#333"/>'
                     f'<text x="{x(t):.1f}" y="{base + 15}" font-size="9" text-anchor="{anchor}">{label}</text>')
    for lim in limits:
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(lim):.1f}" y2="{y(lim):.1f}" stroke="#c00" '
                     f'stroke-dasharray="4 3"/><text x="{w - right - 2}" y="{y(lim) - 3:.1f}" font-size="10" '
                     f'fill="#c00" text-anchor="end">{lim:g} °C</text>')
    colors = ("#1f5fbf", "#2a9d3a", "#a0522d", "#7b3fa0")
    for i, s in enumerate(r.chart):
        line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, _, v, _, _ in s.rows)
        parts.append(f'<polyline fill="none" stroke="{colors[i % len(colors)]}" stroke-width="1.2" points="{line}"/>')
    parts.append(f'<text x="{w - right}" y="{h - 2}" font-size="9" text-anchor="end">{html.escape(r.tz)}</text>'
                 "</svg>")
    return "".join(parts)


def to_html(r: Report, lang: str = "zh-CN") -> str:
    """A self-contained page (no scripts, no external assets) laid out for A4 printing."""
    e = html.escape

    def t(key: str, **params: object) -> str:
        return e(render(key, lang, **params))

    zone_name = r.zone_name if lang.startswith("zh") else r.zone_name_en
    com = r.commodity
    out = [f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{t("report.title")} '
           f'{e(zone_name)} {e(r.local(r.start))}</title><style>{_CSS}</style></head><body>',
           f'<h1>{t("report.title")}</h1><table class="meta">',
           f'<tr><td>{t("report.site")}</td><td>{e(r.site_name)} ({e(r.site_id)})</td></tr>',
           f'<tr><td>{t("report.zone")}</td><td>{e(zone_name)} ({e(r.zone)})</td></tr>']
    if com is not None:
        out.append(f'<tr><td>{t("report.commodity")}</td><td>{e(com.name(lang))} · {t("report.range")} '
                   f'{_f(com.temp_min)} … {_f(com.temp_max)} °C · {t("report.storage_life")} '
                   f'{e(com.storage_life)}</td></tr>')
    if r.temperature is not None:
        out.append(f'<tr><td>{t("report.limits")}</td><td>{_f(r.temperature.low)} … {_f(r.temperature.high)} °C'
                   '</td></tr>')
    out.append(f'<tr><td>{t("report.period")}</td><td>{e(r.local(r.start))} — {e(r.local(r.end))} ({e(r.tz)})'
               f'</td></tr><tr><td>{t("report.generated")}</td><td>{e(r.local(r.generated))} · coldchain '
               f'{e(__version__)}</td></tr></table>')
    if r.temperature is not None:
        z = r.temperature.zone
        cls = "ok" if r.verdict == "compliant" else "bad"
        out.append(f'<h2>{t("report.summary")}</h2><p class="{cls}" id="verdict" data-verdict="{r.verdict}">'
                   f'{e(_verdict_text(r, lang))}</p><table><tr><th>{t("report.mkt")}</th><th>{t("report.min")}</th>'
                   f'<th>{t("report.max")}</th>'
                   f'<th>{t("report.mean")}</th><th>{t("report.minutes_out")}</th><th>{t("report.completeness")}</th>'
                   f'</tr><tr><td class="n"><b>{_f(z.mkt, 2)} °C</b></td><td class="n">{_f(z.min)} °C</td>'
                   f'<td class="n">{_f(z.max)} °C</td><td class="n">{_f(z.mean, 2)} °C</td>'
                   f'<td class="n">{_f(z.minutes_out, 0)}</td><td class="n">{_f(z.completeness)} %</td></tr></table>')
        out.append(_svg_chart(r))
    else:
        out.append(f'<h2>{t("report.summary")}</h2><p class="bad" id="verdict" data-verdict="{r.verdict}">'
                   f'{e(_verdict_text(r, lang))}</p>')
    out += _html_gaps(r, t)
    if r.replayed:  # their times are arrival times: the reviewer must know which stamps are upper bounds
        out.append(f'<p class="note" id="replayed">{t("report.replayed", n=r.replayed)}</p>')
    out += _html_quantities(r, lang, t)
    out += _html_alarms(r, t, lang)
    out += _html_precool(r, t)
    out.append(f'<p class="note">{t("report.method")}</p></body></html>')
    return "".join(out)


def _html_precool(r: Report, t: Callable[..., str]) -> list[str]:
    """The precooling runs of the period: half and 7/8 cooling times against the target (docs/precooling.md)."""
    if not r.precooling:
        return []

    def dur(sec: float | None) -> str:
        return "–" if sec is None else f"{sec / 60:.0f} min"

    out = [f'<h2>{t("precool.title")}</h2><table id="precool"><tr><th>{t("precool.started")}</th><th>lot</th>'
           f'<th>{t("precool.initial")} / {t("precool.air")}</th><th>{t("precool.half")}</th>'
           f'<th>{t("precool.seven_eighths")}</th><th>{t("precool.target")}</th><th></th></tr>']
    for run in r.precooling:
        f = run["figures"] or {}
        temps = " / ".join("–" if f.get(k) is None else f"{f[k]:.1f} °C" for k in ("initial_c", "air_c"))
        verdict = ("" if run["figures"] is None else t("precool.too_slow") if f.get("too_slow") else
                   t("precool.in_time") if f.get("seven_eighths_s") is not None else t(f'precool.state_{f["state"]}'))
        out.append(f'<tr><td>{html.escape(r.local(run["started"]))}</td><td>{html.escape(run["lot"] or "–")}</td>'
                   f'<td>{temps}</td><td>{dur(f.get("half_s"))}</td><td>{dur(f.get("seven_eighths_s"))}</td>'
                   f'<td>{dur(run["target_s"])}</td><td>{verdict}</td></tr>')
    out.append(f'</table><p class="note">{t("precool.note")}</p>')
    return out


def _html_quantities(r: Report, lang: str, t: Callable[..., str]) -> list[str]:
    """One table per quantity: the whole zone, then each sensor."""
    e = html.escape
    out: list[str] = []
    for st in (r.temperature, r.humidity):
        if st is None:
            continue
        unit = "°C" if st.quantity == "temperature" else "%RH"
        out.append(f'<h2>{t("report." + st.quantity)}</h2><table><tr><th>{t("report.sensor")}</th>'
                   f'<th>{t("report.count")}</th><th>{t("report.completeness")}</th><th>{t("report.min")}</th>'
                   f'<th>{t("report.max")}</th><th>{t("report.mean")}</th>'
                   + (f'<th>{t("report.mkt")}</th>' if st.quantity == "temperature" else "")
                   + f'<th>{t("report.minutes_above")}</th><th>{t("report.minutes_below")}</th>'
                   f'<th>{t("report.gaps")}</th></tr>')
        for name, s in [(render("report.whole_zone", lang), st.zone), *st.sensors.items()]:
            out.append(f'<tr><td>{e(name)}</td><td class="n">{s.count}</td><td class="n">{_f(s.completeness)} %</td>'
                       f'<td class="n">{_f(s.min)} {unit}</td><td class="n">{_f(s.max)} {unit}</td>'
                       f'<td class="n">{_f(s.mean, 2)}</td>'
                       + (f'<td class="n">{_f(s.mkt, 2)}</td>' if st.quantity == "temperature" else "")
                       + f'<td class="n">{_f(s.minutes_above, 0)}</td><td class="n">{_f(s.minutes_below, 0)}</td>'
                       f'<td class="n">{_f(s.gap_minutes, 0)}</td></tr>')
        out.append("</table>")
    return out


def _html_gaps(r: Report, t: Callable[..., str]) -> list[str]:
    """Data gaps are findings: each sensor's stretch without data, with its start, end and minutes."""
    e = html.escape
    out = [f'<h2>{t("report.gap_findings")} ({len(r.gaps)})</h2>']
    if not r.gaps:
        return [*out, f'<p>{t("report.none")}</p>']
    out.append(f'<table id="gaps"><tr><th>{t("report.sensor")}</th><th>{t("report.start")}</th>'
               f'<th>{t("report.end")}</th><th>{t("report.minutes")}</th></tr>')
    out += [f'<tr><td>{e(g.sensor)}</td><td>{e(r.local(g.start))}</td><td>{e(r.local(g.end))}</td>'
            f'<td class="n">{g.minutes:.0f}</td></tr>' for g in r.gaps]
    return [*out, "</table>"]


def _html_alarms(r: Report, t: Callable[..., str], lang: str = "zh-CN") -> list[str]:
    """The product excursions, then the device alarms, each with who was told and who acknowledged."""
    e = html.escape
    out: list[str] = []
    for title, rows in (("report.excursions", r.excursions), ("report.device_alarms", r.device_alarms)):
        out.append(f'<h2>{t(title)} ({len(rows)})</h2>')
        if not rows:
            out.append(f'<p>{t("report.none")}</p>')
            continue
        out.append(f'<table><tr><th>#</th><th>{t("report.kind")}</th><th>{t("report.start")}</th>'
                   f'<th>{t("report.end")}</th><th>{t("report.minutes")}</th><th>{t("report.peak")}</th>'
                   f'<th>{t("report.told")}</th><th>{t("report.acked_by")}</th><th>{t("report.comment")}</th></tr>')
        for x in rows:
            told = ", ".join(sorted({m["contact"] for m in x.told}))
            acked = f"{e(x.acked_by or '')} {e(r.local(x.acked))}" if x.acked else t("report.not_acked")
            comment = " / ".join(e(c) for c in x.handling(lang))
            out.append(f'<tr><td>{x.id}</td><td>{t("kind." + x.kind)}</td><td>{e(r.local(x.start))}</td>'
                       f'<td>{e(r.local(x.end)) or t("report.ongoing")}</td><td class="n">{x.minutes:.0f}</td>'
                       f'<td class="n">{_f(x.peak)}</td><td>{e(told)}</td><td>{acked}</td><td>{comment}</td></tr>')
        out.append("</table>")
    return out
