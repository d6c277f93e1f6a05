"""The report a reviewer signs: the compliance page plus what EN 12830 / GB 31605 reviewers check, and a SHA-256.

Added to `compliance.to_html`'s page: page x / y, site and room on every page (CSS page-margin boxes, which
Chromium prints); the instruments (id, model, serial, calibration, stated accuracy, logging interval, from each
sensor's `instrument:` config); each limit with its source, marked where the catalog row is UNVERIFIED; every
excursion with its acknowledgement, corrective actions and close; a reviewed / approved block; and the SHA-256 of
`signed_data`, with the line `coldchain report --verify` reads back (`pdf_verify.py`).

`signed_data` is what the hash covers: a canonical JSON of the period's figures and alarms as they stood at
`generated`. Workflow steps taken after it (a later close) are left out, so a later step does not make a genuine
copy fail; a late reading inside the period, or an edited journal, does.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any

from daemon.alarms.rules import zone_limits
from daemon.config.schema import AppConfig
from daemon.messages import catalog, render
from daemon.reports.compliance import Report, to_html
from daemon.reports.excursions import Excursion

FORMAT = "coldchain-report/1"
# The lines the PDF prints for `--verify`; pdftotext gives them back as printed
VERIFY_RX = re.compile(r"coldchain-verify zone=(\S+) start=(\d+) end=(\d+) generated=(\d+)")
HASH_RX = re.compile(r"SHA-256\D{0,40}?([0-9a-f]{64})")
_LIMITS = (("temp_high", "high", "temp_max"), ("temp_low", "low", "temp_min"), ("freeze", "freeze", "freezing_point"),
           ("rh_high", "high", "rh_max"), ("rh_low", "low", "rh_min"))

_CSS = """
@page {{ size: A4; margin: 14mm 12mm 16mm;
  @bottom-left {{ content: {where}; font-size: 8pt; color: #444; }}
  @bottom-right {{ content: {page}; font-size: 8pt; color: #444; }} }}
.sig td {{ height: 16mm; }} .hash {{ font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }}
.unverified {{ color: #b00; font-weight: bold; }} .src {{ font-size: 8pt; color: #444; }}
"""


def _sensors(cfg: AppConfig, zone: str) -> list[dict[str, Any]]:
    out = []
    for s in cfg.sensors_of(zone):
        ins = s.instrument
        out.append({"id": s.id, "name": s.name, "type": s.type, "interval_s": s.interval,
                    "model": ins.model if ins else None, "serial": ins.serial if ins else None,
                    "calibrated": ins.calibrated.isoformat() if ins and ins.calibrated else None,
                    "calibration_due": ins.calibration_due.isoformat() if ins and ins.calibration_due else None,
                    "accuracy": ins.accuracy if ins else None, "certificate": ins.certificate if ins else None})
    return out


def limit_sources(cfg: AppConfig, zone: str) -> list[dict[str, Any]]:
    """Each limit in force with where it comes from: the room's config or the catalog row (and its flag)."""
    z, com = cfg.zone(zone), cfg.commodity(zone)
    lim = zone_limits(z, com)
    out = []
    for name, key, _col in _LIMITS:
        value = getattr(lim, name)
        if value is None:
            continue
        section = z.alarms.humidity if name.startswith("rh_") else z.alarms.temperature
        from_room = getattr(section, key) is not None
        out.append({"limit": name, "value": value, "source": "room" if from_room else "catalog",
                    "catalog_source": None if from_room or com is None else com.source,
                    "unverified": bool(not from_room and com is not None and com.unverified)})
    return out


def _excursion(x: Excursion, r: Report) -> dict[str, Any]:
    """One alarm as it stood at `r.generated` (steps after it are left out)."""
    g = r.generated

    def by(ts: float | None) -> float | None:
        return ts if ts is not None and ts <= g else None

    end = by(x.end)
    stop = min(end if end is not None else g, r.end)
    return {"id": x.id, "kind": x.kind, "sensor": x.sensor, "start": x.start, "end": end,
            "minutes_in_period": round(max(0.0, stop - max(x.start, r.start)) / 60, 1),
            "limit": x.limit, "peak": x.peak if end is not None else None,
            "acked": by(x.acked), "acked_by": x.acked_by if by(x.acked) else None,
            "ack_comment": x.comment if by(x.acked) else None,
            "corrective": [c for c in x.corrective if c["ts"] <= g],
            "closed": by(x.closed), "closed_by": x.closed_by if by(x.closed) else None,
            "close_comment": x.close_comment if by(x.closed) else None,
            "reescalated": [t for t in x.reescalated if t <= g]}


def signed_data(r: Report, cfg: AppConfig) -> dict[str, Any]:
    """What the SHA-256 covers; built again from the journal by `--verify`."""
    full = r.json()
    return {"format": FORMAT, "site": full["site"], "zone": full["zone"], "commodity": full["commodity"],
            "period": {"start": r.start, "end": r.end, "timezone": r.tz}, "generated": r.generated,
            "sensors": _sensors(cfg, r.zone), "limits": limit_sources(cfg, r.zone),
            "temperature": full["temperature"], "humidity": full["humidity"],
            "excursions": [_excursion(x, r) for x in r.excursions],
            "device_alarms": [_excursion(x, r) for x in r.device_alarms]}


def digest(data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_line(r: Report) -> str:
    """Which report to build again: zone, period and the time it stood at (whole seconds, see `pdf_verify`)."""
    return f"coldchain-verify zone={r.zone} start={r.start:.0f} end={r.end:.0f} generated={r.generated:.0f}"


def json_copy(r: Report, cfg: AppConfig) -> dict[str, Any]:
    """The JSON report with its signed data and hash beside it (a copy `--verify` can check on its own)."""
    data = signed_data(r, cfg)
    return {**r.json(), "signed": {"data": data, "sha256": digest(data)}}


def signed_html(r: Report, cfg: AppConfig, lang: str) -> str:
    """The compliance page with the reviewer's sections and the hash (for `html_to_pdf`)."""
    data = signed_data(r, cfg)
    sha = digest(data)
    page = to_html(r, lang)
    zone_name = r.zone_name if lang.startswith("zh") else r.zone_name_en
    css = _CSS.format(where=_css_str(f"{r.site_name} · {zone_name} · {r.local(r.start)} — {r.local(r.end)}"),
                      page=_page_counter(catalog(lang)["pdf.page"]))
    page = page.replace("</style>", css + "</style>", 1)
    head = "".join([*_instruments_html(data["sensors"], lang), *_limits_html(data["limits"], lang)])
    page = page.replace("</table>", "</table>" + head, 1)  # after the first table: what the report covers
    tail = "".join([*_workflow_html(r, lang), *_review_html(lang, sha, verify_line(r))])
    return page.replace('<p class="note">', tail + '<p class="note">', 1)


def _css_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _page_counter(template: str) -> str:
    """`第 {page} / {pages} 页` as CSS content: `"第 " counter(page) " / " counter(pages) " 页"`."""
    parts = re.split(r"(\{page\}|\{pages\})", template)
    return " ".join(f"counter({p[1:-1]})" if p in ("{page}", "{pages}") else _css_str(p) for p in parts if p)


def _t(key: str, lang: str, **params: object) -> str:
    return html.escape(render(key, lang, **params))


def _cell(v: object, lang: str) -> str:
    if v in (None, ""):
        return f'<span class="unverified">{_t("pdf.not_recorded", lang)}</span>'
    return html.escape(str(v))


def _interval(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"


def _instruments_html(sensors: list[dict[str, Any]], lang: str) -> list[str]:
    cols = ("sensor_id", "model", "serial", "calibrated", "calibration_due", "accuracy", "certificate", "interval")
    out = [f'<h2>{_t("pdf.instruments", lang)}</h2><table><tr>'
           + "".join(f"<th>{_t('pdf.' + c, lang)}</th>" for c in cols) + "</tr>"]
    for s in sensors:
        vals = [s["id"] + (f" ({s['name']})" if s["name"] else ""), s["model"], s["serial"], s["calibrated"],
                s["calibration_due"], s["accuracy"], s["certificate"], _interval(s["interval_s"])]
        out.append("<tr>" + "".join(f"<td>{_cell(v, lang)}</td>" for v in vals) + "</tr>")
    out.append("</table>")
    return out


def _limits_html(limits: list[dict[str, Any]], lang: str) -> list[str]:
    out = [f'<h2>{_t("pdf.limits", lang)}</h2><table><tr><th>{_t("pdf.limit", lang)}</th>'
           f'<th>{_t("pdf.value", lang)}</th><th>{_t("pdf.source", lang)}</th></tr>']
    for x in limits:
        unit = "%RH" if x["limit"].startswith("rh_") else "°C"
        src = _t("pdf.source_" + x["source"], lang)
        if x["unverified"]:
            src += f' <span class="unverified">{_t("pdf.unverified", lang)}</span>'
        out.append(f'<tr><td>{_t("pdf.limit_" + x["limit"], lang)}</td><td class="n">{x["value"]:g} {unit}</td>'
                   f"<td>{src}</td></tr>")
    out.append("</table>")
    sources = {x["catalog_source"] for x in limits if x["catalog_source"]}
    out += [f'<p class="src">{_t("pdf.source_catalog", lang)}: {html.escape(s)}</p>' for s in sorted(sources)]
    return out


def _workflow_html(r: Report, lang: str) -> list[str]:
    """Each excursion's handling: acknowledgement, corrective actions, close, in the site's time."""
    rows = [*r.excursions, *r.device_alarms]
    out = [f'<h2>{_t("pdf.workflow", lang)} ({len(rows)})</h2>']
    if not rows:
        return [*out, f'<p>{_t("report.none", lang)}</p>']
    out.append(f'<table><tr><th>#</th><th>{_t("report.kind", lang)}</th><th>{_t("pdf.ack", lang)}</th>'
               f'<th>{_t("pdf.actions", lang)}</th><th>{_t("pdf.closed", lang)}</th></tr>')
    e = html.escape
    for x in rows:
        ack = (f"{e(x.acked_by or '')} {e(r.local(x.acked))}<br>{e(x.comment or '')}" if x.acked
               else f'<span class="unverified">{_t("report.not_acked", lang)}</span>')
        if x.reescalated:
            ack += f'<br><span class="unverified">{_t("pdf.reescalated", lang, n=len(x.reescalated))}</span>'
        acts = "<br>".join(f"{_t('action.' + c['kind'], lang)}: {e(c['text'])} ({e(c['who'])} {e(r.local(c['ts']))})"
                           for c in x.corrective) or f'<span class="unverified">{_t("pdf.no_action", lang)}</span>'
        closed = (f"{e(x.closed_by or '')} {e(r.local(x.closed))}" + (f"<br>{e(x.close_comment)}" if x.close_comment
                                                                    else "") if x.closed
                  else f'<span class="unverified">{_t("pdf.not_closed", lang)}</span>')
        out.append(f'<tr><td>{x.id}</td><td>{_t("kind." + x.kind, lang)}</td><td>{ack}</td><td>{acts}</td>'
                   f"<td>{closed}</td></tr>")
    out.append("</table>")
    return out


def _review_html(lang: str, sha: str, line: str) -> list[str]:
    row = (f'<td>{_t("pdf.name", lang)}</td><td></td><td>{_t("pdf.signature", lang)}</td><td></td>'
           f'<td>{_t("pdf.date", lang)}</td><td></td>')
    return [f'<h2>{_t("pdf.review", lang)}</h2><table class="sig">',
            f'<tr><th colspan="6">{_t("pdf.reviewed", lang)}</th></tr><tr>{row}</tr>',
            f'<tr><th colspan="6">{_t("pdf.approved", lang)}</th></tr><tr>{row}</tr></table>',
            f'<p>{_t("pdf.hash", lang)}: <span class="hash">{sha}</span></p>',
            f'<p class="note">{_t("pdf.verify", lang)}<br><span class="hash">{html.escape(line)}</span></p>']
