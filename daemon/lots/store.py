"""Lots (batches) by traceability code: check in, move, check out, and their cold-chain record.

A lot has one history whatever rooms it passed through: its stays are rows of
`lot_stays`, at most one open at a time (a unique index guards it). The record is
computed from the journal on demand: per stay and overall min/max/mean/MKT, minutes
outside the lot's commodity range, the excursions of the rooms while it was there, and
the shelf-life estimate. Every change is written with its author to the audit log in the
same transaction, so the log and the data cannot disagree. The rows: `daemon/storage/lots.py`.

Staff often enter a lot after it went into the room: each change may be given the earlier time it
happened (`at`), not in the future and not before the lot's previous event. The stay then starts
(or ends) at that time, so the record covers the real stay; the audit entry is stamped with the time
it was entered and says when it happened (`detail.at`, `detail.backdated_s`).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from daemon.alarms.rules import zone_limits
from daemon.config.catalog import Commodity, load_catalog
from daemon.config.schema import AppConfig, ZoneConfig
from daemon.lots.event_ids import legacy_uid
from daemon.lots.excursions import LotExcursion, lot_excursions
from daemon.lots.precool import Precooling, public_run
from daemon.lots.shelflife import estimate
from daemon.reports.compliance import zone_stats
from daemon.reports.excursions import excursions
from daemon.reports.mkt import Segment, Summary, combine
from daemon.storage.db import Tx
from daemon.storage.journal import Journal

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{2,63}$")
SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


FUTURE_SLACK = 60.0  # a browser's clock a little ahead of the box's is not "in the future"


class LotError(ValueError):
    """A lot operation refused; `status` is the HTTP status it maps to."""

    status = 422


class LotNotFound(LotError):
    status = 404


class LotConflict(LotError):
    status = 409


@dataclass(frozen=True, slots=True)
class Who:
    """The author of a change, as the audit log records it."""

    name: str
    role: str


def lot_limits(com: Commodity) -> tuple[float | None, float | None]:
    """The lot's own range (its commodity's), the same defaults a room storing it would get."""
    lim = zone_limits(ZoneConfig(id="lot", name="lot", commodity=com.key), com)
    return lim.temp_low, lim.temp_high


def stay_limits(zone: ZoneConfig | None, com: Commodity | None) -> tuple[float | None, float | None, float]:
    """(low, high, the room's alarm delay) for a lot of `com` in `zone`: the room's own limits when it stores
    the same commodity (its override is the site's decision for those goods), else the commodity's."""
    if com is None:
        return None, None, 600.0
    if zone is not None and zone.commodity == com.key:
        lim = zone_limits(zone, com)
        return lim.temp_low, lim.temp_high, lim.temp_delay
    low, high = lot_limits(com)
    return low, high, zone_limits(zone, com).temp_delay if zone is not None else 600.0


class Lots:
    """Lot operations on the journal (blocking: call from a thread in async code)."""

    def __init__(self, journal: Journal, cfg: AppConfig) -> None:
        self.journal = journal
        self.cfg = cfg
        self.precool = Precooling(journal, cfg)
        site = cfg.site.id
        journal.lot_events.fill_uids(lambda rid: legacy_uid(site, rid))

    def _zone(self, zone: str) -> ZoneConfig:
        try:
            return self.cfg.zone(zone)
        except StopIteration:
            raise LotNotFound(f"no zone {zone!r}; known: {', '.join(z.id for z in self.cfg.zones)}") from None

    def check_in(self, code: str, commodity: str, zone: str, now: float, who: Who, *, quantity: float | None = None,
                 unit: str | None = None, origin: str | None = None, at: float | None = None,
                 source: str | None = None) -> dict[str, Any]:
        """A new lot arrives in `zone` (at `at`, if earlier than now); the code must be new here. `source`: the
        site that shipped it (receiving, same code): its EPCIS event is `receiving`, not `commissioning`."""
        self._check_new(code, commodity, zone, source)
        lots = self.journal.lots
        with self.journal.transaction() as tx:
            if lots.exists(tx, code):
                raise LotConflict(f"lot {code} is already registered")
            when = _happened(at, now, None)
            lots.insert(tx, code, commodity, quantity, unit, origin, when, who.name)
            lots.start_stay(tx, code, zone, when, who.name)
            run = self.precool.arrived(tx, zone, code, commodity, when, who.name)
            if source is not None:
                lots.set_lineage(tx, code, source, None)
            self.journal.lot_events.add(tx, when, "receive" if source else "commission", code, who.name, now,
                                        zone=zone, peer=source)
            self._audit(tx, now, who, "lot.check_in", code, {"zone": zone, "commodity": commodity, "quantity": quantity,
                                                             "unit": unit, "origin": origin,
                                                             **({"source": source} if source else {}),
                                                             **_when(when, now),
                                                             **({"precool_run": run} if run else {})})
        return self.get(code)

    def _check_new(self, code: str, commodity: str, zone: str, site: str | None = None) -> None:
        if not CODE.match(code):
            raise LotError(f"traceability code {code!r}: 3-64 letters, digits, '.', '_' or '-'")
        if commodity not in load_catalog():
            raise LotError(f"unknown commodity {commodity!r}")
        if site is not None and not SITE.match(site):
            raise LotError(f"site id {site!r}: letters, digits, '.', '_' or '-'")
        self._zone(zone)

    def move(self, code: str, zone: str, now: float, who: Who, *, at: float | None = None) -> dict[str, Any]:
        """The lot goes to another room (at `at`, if earlier): its stay there starts when the last one ends."""
        self._zone(zone)
        lots = self.journal.lots
        final = self.precool.final_for_lot(code, min(at, now) if at is not None else now)
        with self.journal.transaction() as tx:
            stay = self._require_open(tx, code)
            if stay[1] == zone:
                raise LotConflict(f"lot {code} is already in {zone}")
            when = _happened(at, now, lots.open_stay_start(tx, code))
            start = lots.open_stay_start(tx, code)
            lots.end_stay(tx, stay[0], when, who.name)
            self.precool.lot_left(tx, code, when, who.name, final)
            lots.start_stay(tx, code, zone, when, who.name)
            run = self.precool.arrived(tx, zone, code, lots.commodity(tx, code) or "", when, who.name)
            self.journal.lot_events.add(tx, when, "move", code, who.name, now, zone=zone,
                                        ended=(stay[1], start or when))
            self._audit(tx, now, who, "lot.move", code, {"from": stay[1], "to": zone, **_when(when, now),
                                                         **({"precool_run": run} if run else {})})
        return self.get(code)

    def check_out(self, code: str, now: float, who: Who, *, at: float | None = None,
                  destination: str | None = None) -> dict[str, Any]:
        """The lot leaves the center (at `at`, if earlier); its record here is closed. `destination`: the site it
        is shipped to, which receives it under the same code (EPCIS `shipping` with a destination)."""
        if destination is not None and not SITE.match(destination):
            raise LotError(f"site id {destination!r}: letters, digits, '.', '_' or '-'")
        if destination is not None and destination == self.cfg.site.id:
            raise LotError(f"the destination {destination} is this site; move the lot to another room instead")
        lots = self.journal.lots
        final = self.precool.final_for_lot(code, min(at, now) if at is not None else now)
        with self.journal.transaction() as tx:
            stay = self._require_open(tx, code)
            start = lots.open_stay_start(tx, code)
            when = _happened(at, now, start)
            lots.end_stay(tx, stay[0], when, who.name)
            self.precool.lot_left(tx, code, when, who.name, final)
            lots.check_out(tx, code, when, destination)
            self.journal.lot_events.add(tx, when, "ship" if destination else "check_out", code, who.name, now,
                                        ended=(stay[1], start or when), peer=destination)
            self._audit(tx, now, who, "lot.check_out", code, {"zone": stay[1],
                                                              **({"destination": destination} if destination else {}),
                                                              **_when(when, now)})
        return self.get(code)

    def _audit(self, tx: Tx, ts: float, who: Who, action: str, target: str, detail: dict[str, Any]) -> None:
        self.journal.audit.add(tx, ts, who.name, who.role, action, target, detail)

    def _require_open(self, tx: Tx, code: str) -> tuple[int, str]:
        if not self.journal.lots.exists(tx, code):
            raise LotNotFound(f"no lot {code}")
        stay = self.journal.lots.open_stay(tx, code)
        if stay is None:
            raise LotConflict(f"lot {code} has been checked out")
        return stay

    def get(self, code: str) -> dict[str, Any]:
        """The lot and its stays, without statistics."""
        row = self.journal.lots.get(code)
        if row is None:
            raise LotNotFound(f"no lot {code}")
        c, com, qty, unit, origin, created, by, out = row
        stays = self.journal.lots.stays(code)
        destination, source, parents = self.journal.lots.lineage(code)
        return {"code": c, "destination": destination, "source": source, "parents": parents, "commodity": com,
                "quantity": qty, "unit": unit, "origin": origin, "created": created,
                "created_by": by, "checked_out": out, "zone": next((z for z, _, e, _, _ in stays if e is None), None),
                "stays": [{"zone": z, "start": a, "end": b, "who_in": wi, "who_out": wo} for z, a, b, wi, wo in stays]}

    def lineage_codes(self, code: str, depth: int = 16) -> list[str]:
        """The code and those it was split or merged from, recursively: the oldest generation first."""
        gens = [[code]]
        seen = {code}
        while gens[-1] and len(gens) <= depth:
            nxt = [p for c in gens[-1] for p in self.journal.lots.lineage(c)[2] if p not in seen]
            seen.update(nxt)
            gens.append(list(dict.fromkeys(nxt)))
        return [c for g in reversed(gens) for c in sorted(g)]

    def search(self, *, in_storage: bool | None = None, zone: str | None = None,
               limit: int = 500) -> list[dict[str, Any]]:
        rows = self.journal.lots.search(in_storage=in_storage, zone=zone, limit=limit)
        return [{"code": c, "commodity": com, "quantity": q, "unit": u, "origin": o, "created": cr,
                 "checked_out": out, "zone": z} for c, com, q, u, o, cr, out, z in rows]

    def record(self, code: str, now: float) -> dict[str, Any]:
        """The lot's cold-chain record: per stay and overall statistics, its excursions, shelf-life estimate."""
        lot = self.get(code)
        com = load_catalog().get(lot["commodity"])
        low, high = lot_limits(com) if com else (None, None)
        parts: list[tuple[Summary, list[Segment]]] = []
        tracks = []
        total_s = 0.0
        exc_all: list[LotExcursion] = []
        for stay in lot["stays"]:
            a, b = stay["start"], stay["end"] if stay["end"] is not None else now
            z = next((x for x in self.cfg.zones if x.id == stay["zone"]), None)
            lo, hi, delay = stay_limits(z, com)
            stay["zone_name"] = z.name if z else stay["zone"]
            stay["zone_name_en"] = (z.name_en or z.name) if z else stay["zone"]
            stay["hours"] = round((b - a) / 3600, 2)
            stay["limits"] = {"low": lo, "high": hi}
            st = zone_stats(self.journal, self.cfg, stay["zone"], "temperature", a, b, lo, hi) if b > a else None
            stay["temperature"] = _summary_json(st.zone) if st else None
            if st is not None:
                parts.append((st.zone, [s for segs in st.tracks.values() for s in segs]))
                tracks.append((a, b, list(st.tracks.values())))
                alarms = excursions(self.journal, start=a, end=b, now=now, zone=stay["zone"], product_only=True)
                exc = lot_excursions(stay["zone"], list(st.tracks.values()), lo, hi, alarms, min_seconds=delay,
                                     now=now)
            else:
                tracks.append((a, b, []))
                exc = []
            total_s += max(0.0, b - a)
            stay["excursions"] = len(exc)
            exc_all += exc
        ranges = {(s["limits"]["low"], s["limits"]["high"]) for s in lot["stays"]}
        if len(ranges) == 1:  # every stay under one range (a room's override included): the whole stay too
            low, high = ranges.pop()
        total = combine(parts, low, high, total_s) if parts else None
        shelf = estimate(com, tracks) if com else None
        return {
            **lot,
            "commodity_info": None if com is None else {
                "key": com.key, "name_en": com.name_en, "name_zh": com.name_zh, "temp_min": com.temp_min,
                "temp_max": com.temp_max, "storage_life": com.storage_life},
            "limits": {"low": low, "high": high},
            "hours": round(total_s / 3600, 2),
            "temperature": _summary_json(total) if total else None,
            "excursions": [e.json() for e in exc_all],
            "shelf_life": shelf.json() if shelf else None,
            "precooling": self.precool.lot_runs(code, now),
            "as_of": now,
        }


def _happened(at: float | None, now: float, previous: float | None) -> float:
    """When a change happened: `at` if given (not in the future, after the lot's previous event), else now."""
    if at is None:  # entered as it happens: as before, whatever the previous event's time
        return now
    if not math.isfinite(at):
        raise LotError("the time it happened must be a real time")
    if at > now + FUTURE_SLACK:
        raise LotError("the time it happened is in the future")
    when = min(at, now)
    if previous is not None and when <= previous:
        raise LotConflict("the time it happened is not after the lot's previous check-in or move")
    return when


def _when(when: float, now: float) -> dict[str, Any]:
    """The audit detail of a backdated change: when it happened, and how much later it was entered (the entry's
    own `ts`); nothing for a change entered as it happened."""
    return {"at": when, "backdated_s": round(now - when, 3)} if when < now else {}


def _summary_json(s: Summary) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(s).items()}


PUBLIC_EXCURSION = ("kind", "start", "end", "minutes", "peak", "limit", "alarm_state")


def public_record(rec: dict[str, Any]) -> dict[str, Any]:
    """The record a buyer sees from the QR code: no staff names, no phone numbers, no comments."""
    return {
        "code": rec["code"], "commodity": rec["commodity"], "commodity_info": rec["commodity_info"],
        "quantity": rec["quantity"], "unit": rec["unit"], "origin": rec["origin"], "created": rec["created"],
        "checked_out": rec["checked_out"], "hours": rec["hours"], "limits": rec["limits"],
        "temperature": rec["temperature"], "shelf_life": rec["shelf_life"], "as_of": rec["as_of"],
        "precooling": [public_run(r) for r in rec.get("precooling", [])],
        "stays": [{k: s[k] for k in ("zone_name", "zone_name_en", "start", "end", "hours", "limits", "temperature")}
                  for s in rec["stays"]],
        "excursions": [{**{k: e[k] for k in PUBLIC_EXCURSION}, "minutes": round(e["minutes"], 1),
                        "acknowledged": e["acked"] is not None} for e in rec["excursions"]],
    }
