"""A lot's chain of custody: every stay of it and of the lots it was split or merged from, and the trips
between sites a logger recorded, each with its place, times and temperature figures.

On one box the chain reaches back through parents (split, merge) kept in this journal; a stay at another
site is known here by its site id only (`source` / `destination`); the regional hub joins the boxes'
chains by code from their EPCIS events. A trip in transit is a logger's file attached to the lot
(`attach_transit`), summarised with the same rules as a room (MKT, minutes outside the lot's range).
"""

from __future__ import annotations

import itertools
import statistics
import zoneinfo
from typing import Any

from daemon.config.catalog import load_catalog
from daemon.lots.logger_file import LoggerFileError, parse_csv, parse_json
from daemon.lots.store import FUTURE_SLACK, LotConflict, LotError, Lots, Who, _summary_json, lot_limits
from daemon.reports.mkt import summarize
from daemon.storage.lot_events import TransitLog

MAX_DEPTH = 16  # splits of splits: deeper than any real packing line, shallow enough to stop a loop


def attach_transit(lots: Lots, code: str, text: str, filename: str, now: float, who: Who, *,
                   logger: str | None = None) -> dict[str, Any]:
    """Attach a logger's file to a lot shipped from here (with a destination) or received here (from a source)."""
    lot = lots.get(code)
    if lot["destination"] is None and lot["source"] is None:
        raise LotConflict(f"lot {code} has no transfer between sites: check it out with a destination, or check it "
                          "in with its source site, first")
    tz = zoneinfo.ZoneInfo(lots.cfg.site.timezone)
    try:
        if filename.lower().endswith(".json") or text.lstrip().startswith("{"):
            named, rows = parse_json(text, filename, tz)
        else:
            named, rows = None, parse_csv(text, filename, tz)
    except LoggerFileError as exc:
        err = LotError(f"{exc.total} problem(s) in {filename}, nothing imported:\n{exc}")
        err.problems = exc.problems  # type: ignore[attr-defined]
        raise err from None
    if rows[-1][0] > now + FUTURE_SLACK:
        raise LotError(f"{filename}: the last reading is in the future (logger clock ahead?)")
    name = (logger or named or filename)[:100]
    with lots.journal.transaction() as tx:
        log_id = lots.journal.lot_events.add_transit(tx, code, name, filename[:200], rows, now, who.name)
        lots._audit(tx, now, who, "lot.transit", code, {"logger": name, "file": filename, "readings": len(rows),
                                                        "start": rows[0][0], "end": rows[-1][0]})
    return {"id": log_id, "logger": name, "readings": len(rows), "start": rows[0][0], "end": rows[-1][0]}


def transit_leg(log: TransitLog, low: float | None, high: float | None) -> dict[str, Any]:
    """One trip's figures: the logger's readings held until the next (at most 3 of its intervals)."""
    times = [t for t, _ in log.readings]
    step = statistics.median(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else 60.0
    end = log.end + step
    summary, _ = summarize(list(log.readings), log.start, end, interval=step, max_hold=3 * step, low=low, high=high)
    return {"kind": "transit", "logger": log.logger, "file": log.source, "start": log.start, "end": end,
            "readings": len(log.readings), "limits": {"low": low, "high": high},
            "temperature": _summary_json(summary)}


def custody(lots: Lots, code: str, now: float) -> dict[str, Any]:
    """The chain of one code, oldest leg first: its ancestors' stays, trips between sites, its own stays."""
    legs: list[dict[str, Any]] = []
    _collect(lots, code, now, legs, set(), 0)
    legs.sort(key=lambda leg: (leg["start"], leg["kind"] != "transit"))
    lot = lots.get(code)
    return {"code": code, "commodity": lot["commodity"], "source": lot["source"], "destination": lot["destination"],
            "parents": lot["parents"], "site": lots.cfg.site.id, "legs": legs, "as_of": now}


def _collect(lots: Lots, code: str, now: float, legs: list[dict[str, Any]], seen: set[str], depth: int) -> None:
    if code in seen or depth > MAX_DEPTH:
        return
    seen.add(code)
    rec = lots.record(code, now)
    for p in rec["parents"]:
        _collect(lots, p, now, legs, seen, depth + 1)
    site = lots.cfg.site.id
    for s in rec["stays"]:
        legs.append({"kind": "stay", "lot": code, "site": site, "zone": s["zone"], "zone_name": s["zone_name"],
                     "start": s["start"], "end": s["end"], "limits": s["limits"], "temperature": s["temperature"],
                     "excursions": [e for e in rec["excursions"] if e["zone"] == s["zone"] and s["start"] <= e["start"]
                                    and (s["end"] is None or e["start"] < s["end"])]})
    com = load_catalog().get(rec["commodity"])
    low, high = lot_limits(com) if com else (None, None)
    for log in lots.journal.lot_events.transit(code):
        legs.append({**transit_leg(log, low, high), "lot": code, "site": None,
                     "from": site if rec["destination"] else rec["source"],
                     "to": rec["destination"] if rec["destination"] else site})
