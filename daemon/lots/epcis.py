"""Lot events as GS1 EPCIS 2.0 events (JSON-LD), one by one for the uplink and as an EPCISDocument for export.

Mapping (docs/transfers.md): check-in `commissioning` (ObjectEvent ADD), check-in from another site `receiving`,
move `storing`, check-out `shipping` (with a destination site when shipped to one), split a
TransformationEvent and merge an AggregationEvent (both `commissioning` of the new codes); on a vehicle box
(`site.kind: vehicle`) a check-in from a site is `loading` and a check-out `unloading` (both `in_transit`, no
bizLocation), and every event says `cc:siteKind: vehicle`. A lot is the
class `urn:coldchain:lot:<code>` in a quantityList. Where an event ends a stay, `sensorElementList` carries
that stay's temperature report (min, max, mean, MKT, minutes outside the lot's range, one ALARM_CONDITION
report per excursion); a receiving event carries the trips a logger recorded on the way.

`eventID` is `urn:uuid:` + the uid the journal keeps with the event (a random UUID, given when it is written; rows
from before migration 13 keep their old uuid5(NAMESPACE, "<site>/lot-event/<journal id>")): a resend has the same
id, and a journal restored from an older backup does not repeat an id the hub has already seen.
Other modules (precooling) add their own figures through `CONTRIBUTORS` without editing this one.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from daemon.config.catalog import load_catalog
from daemon.lots.chain import transit_leg
from daemon.lots.event_ids import CC, legacy_uid
from daemon.lots.store import Lots, lot_limits
from daemon.ports.sinks import LotEpcisEvent
from daemon.storage.lot_events import LotEvent

GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
CONTEXT: list[Any] = [GS1_CONTEXT, {"cc": CC}]
UOM = {"kg": "KGM", "t": "TNE", "g": "GRM", "l": "LTR", "m3": "MTQ"}

Contributor = Callable[[LotEvent, dict[str, Any], Lots], None]
CONTRIBUTORS: list[Contributor] = []
"""Hooks called with (lot event, its EPCIS event, Lots) after it is built; each may add extension fields
(`cc:...`) or sensor elements. The precooling runs register theirs here to put their figures in the record."""

KINDS: dict[str, tuple[str, str, str | None]] = {  # kind -> (type, bizStep, disposition)
    "commission": ("ObjectEvent", "commissioning", "active"),
    "receive": ("ObjectEvent", "receiving", "in_progress"),
    "move": ("ObjectEvent", "storing", "in_progress"),
    "ship": ("ObjectEvent", "shipping", "in_transit"),
    "check_out": ("ObjectEvent", "shipping", "in_transit"),
    "split": ("TransformationEvent", "commissioning", "active"),
    "merge": ("AggregationEvent", "commissioning", "active"),
}
VEHICLE: dict[str, tuple[str, str]] = {  # kind -> (bizStep, disposition) on a vehicle box (`site.kind: vehicle`)
    "receive": ("loading", "in_transit"),  # received from a site: loaded into the compartment
    "ship": ("unloading", "in_transit"),  # shipped on to a site, which receives it
    "check_out": ("unloading", "in_transit"),
}


def event_id(site: str, ev: LotEvent) -> str:
    """The kept uid (random, so a journal restored from a backup never repeats an id the hub has seen)."""
    return f"urn:uuid:{ev.uid or legacy_uid(site, ev.id)}"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lot_uri(code: str) -> str:
    return f"urn:coldchain:lot:{code}"


class Epcis:
    """Builds EPCIS events from the journal's lot events (blocking: reads the journal)."""

    def __init__(self, lots: Lots) -> None:
        self.lots = lots
        self.site = lots.cfg.site
        self.tz = zoneinfo.ZoneInfo(self.site.timezone)

    def site_uri(self, site: str | None = None) -> str:
        if site is None or site == self.site.id:
            return self.site.sgln or f"urn:coldchain:site:{self.site.id}"
        return f"urn:coldchain:site:{site}"

    def zone_uri(self, zone: str | None) -> str:
        z = next((x for x in self.lots.cfg.zones if x.id == zone), None)
        if z is not None and z.sgln:
            return z.sgln
        return f"{self.site_uri()}:zone:{zone}" if zone and not self.site.sgln else self.site_uri()

    def event(self, ev: LotEvent, now: float, *, context: bool = True) -> dict[str, Any]:
        """One event; `context`: with its own @context (a message on its own, not inside a document)."""
        typ, step, disposition = KINDS[ev.kind]
        vehicle = self.site.kind == "vehicle"
        if vehicle:
            step, disposition = VEHICLE.get(ev.kind, (step, disposition))
        offset = datetime.fromtimestamp(ev.ts, self.tz).strftime("%z")
        body: dict[str, Any] = {"@context": CONTEXT} if context else {}
        body |= {"type": typ, "eventTime": iso(ev.ts), "eventTimeZoneOffset": f"{offset[:3]}:{offset[3:]}",
                 "eventID": event_id(self.site.id, ev)}
        body |= self._what(ev, typ)
        body |= {"bizStep": step, "disposition": disposition}
        where = ev.zone if ev.kind not in {"ship", "check_out"} else ev.ended_zone
        body["readPoint"] = {"id": self.zone_uri(where)}
        if ev.kind not in {"ship", "check_out"} and not (vehicle and disposition == "in_transit"):
            body["bizLocation"] = {"id": self.zone_uri(ev.zone)}
        if ev.kind == "ship" and ev.peer:
            body["destinationList"] = [{"type": "location", "destination": self.site_uri(ev.peer)}]
        if ev.kind == "receive" and ev.peer:
            body["sourceList"] = [{"type": "location", "source": self.site_uri(ev.peer)}]
        elements = self._sensors(ev, now)
        if elements:
            body["sensorElementList"] = elements
        body |= self._extensions(ev)
        for contribute in CONTRIBUTORS:
            contribute(ev, body, self.lots)
        return body

    def _what(self, ev: LotEvent, typ: str) -> dict[str, Any]:
        if typ == "TransformationEvent":
            return {"inputQuantityList": [self._quantity(c) for c in ev.inputs],
                    "outputQuantityList": [self._quantity(c) for c in ev.outputs]}
        if typ == "AggregationEvent":
            return {"parentID": lot_uri(ev.lot), "childQuantityList": [self._quantity(c) for c in ev.inputs],
                    "action": "ADD"}
        out: dict[str, Any] = {"quantityList": [self._quantity(ev.lot)],
                               "action": "ADD" if ev.kind == "commission" else "OBSERVE"}
        if ev.kind == "commission":
            lot = self.lots.get(ev.lot)
            out["ilmd"] = {"cc:commodity": lot["commodity"], **({"cc:origin": lot["origin"]} if lot["origin"] else {})}
        return out

    def _quantity(self, code: str) -> dict[str, Any]:
        row = self.lots.journal.lots.get(code)
        q: dict[str, Any] = {"epcClass": lot_uri(code)}
        if row is not None and row[2] is not None:
            q["quantity"] = row[2]
            if (uom := UOM.get((row[3] or "").lower())) is not None:
                q["uom"] = uom
        return q

    def _extensions(self, ev: LotEvent) -> dict[str, Any]:
        ext: dict[str, Any] = {"cc:site": self.site.id}
        if self.site.kind == "vehicle":
            ext["cc:siteKind"] = "vehicle"  # absent: a center
        if (zone := ev.zone or ev.ended_zone) is not None:
            ext["cc:zone"] = zone
        ext["cc:lot"] = ev.lot
        if ev.kind == "split":
            ext |= {"cc:inputLots": list(ev.inputs), "cc:outputLots": list(ev.outputs)}
        if ev.kind == "merge":
            ext |= {"cc:inputLots": list(ev.inputs), "cc:outputLots": [ev.lot]}
        if ev.kind == "ship" and ev.peer:
            ext["cc:destination"] = ev.peer
        if ev.kind == "receive" and ev.peer:
            ext["cc:source"] = ev.peer
        return ext

    def _sensors(self, ev: LotEvent, now: float) -> list[dict[str, Any]]:
        """The temperature reports of the stays this event ends (a merge ends one per input)."""
        ended = [(ev.lot, ev.ended_zone, ev.ended_start)] if ev.ended_zone is not None else []
        if ev.kind == "merge":
            ended = [(c, s["zone"], s["start"]) for c in ev.inputs for s in self.lots.get(c)["stays"]
                     if s["end"] == ev.ts]
        out = [el for code, zone, start in ended if (el := self._stay_report(code, zone, start, now))]
        if ev.kind == "receive":
            out += self._transit_reports(ev.lot)
        return out

    def _stay_report(self, code: str, zone: str | None, start: float | None, now: float) -> dict[str, Any] | None:
        rec = self.lots.record(code, now)
        stay = next((s for s in rec["stays"] if s["zone"] == zone and s["start"] == start), None)
        if stay is None or stay["temperature"] is None or stay["temperature"]["min"] is None:
            return None
        excursions = [e for e in rec["excursions"] if e["zone"] == zone and stay["start"] <= e["start"]
                      and (stay["end"] is None or e["start"] < stay["end"])]
        meta = {"startTime": iso(stay["start"]), "endTime": iso(stay["end"] if stay["end"] is not None else now),
                "cc:lot": code, "cc:zone": zone}
        return {"sensorMetadata": meta,
                "sensorReport": [_summary_report(stay["temperature"], stay["limits"]), *map(_alarm_report, excursions)]}

    def _transit_reports(self, code: str) -> list[dict[str, Any]]:
        lot = self.lots.get(code)
        com = load_catalog().get(lot["commodity"])
        low, high = lot_limits(com) if com else (None, None)
        out = []
        for log in self.lots.journal.lot_events.transit(code):
            leg = transit_leg(log, low, high)
            out.append({"sensorMetadata": {"startTime": iso(leg["start"]), "endTime": iso(leg["end"]),
                                           "cc:lot": code, "cc:logger": leg["logger"], "cc:transit": True},
                        "sensorReport": [_summary_report(leg["temperature"], leg["limits"])]})
        return out

    def document(self, events: list[LotEvent], now: float) -> dict[str, Any]:
        """An EPCISDocument of `events`, in the order given."""
        return {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": iso(now),
                "sender": self.site_uri(), "epcisBody": {"eventList": [self.event(e, now, context=False)
                                                                       for e in events]}}

    def lot_document(self, code: str, now: float) -> dict[str, Any]:
        """Every event of a lot and of the lots it came from (split, merge), as one document."""
        codes = self.lots.lineage_codes(code)
        return self.document(self.lots.journal.lot_events.of_lots(codes), now)

    def period_document(self, start: float, end: float, now: float) -> dict[str, Any]:
        return self.document(self.lots.journal.lot_events.between(start, end), now)


def uplink_source(lots: Lots, now: Callable[[], float]) -> Callable[[int, int], list[LotEpcisEvent]]:
    """The forwarder's reader of lot events (blocking): each as an EPCIS event with its own @context."""
    ep = Epcis(lots)

    def read(after: int, limit: int) -> list[LotEpcisEvent]:
        t = now()
        return [LotEpcisEvent(e.id, e.lot, ep.event(e, t)) for e in lots.journal.lot_events.after(after, limit)]

    return read


def _summary_report(t: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    rep: dict[str, Any] = {"type": "Temperature", "minValue": t["min"], "maxValue": t["max"], "meanValue": t["mean"],
                           "uom": "CEL", "cc:mkt": t["mkt"], "cc:minutesOutside": round(t["minutes_out"], 1),
                           "cc:low": limits["low"], "cc:high": limits["high"]}
    return {k: v for k, v in rep.items() if v is not None}


def _alarm_report(e: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Temperature", "exception": "ALARM_CONDITION", "time": iso(e["start"]), "value": e["peak"],
            "uom": "CEL", "cc:kind": e["kind"], "cc:limit": e["limit"], "cc:minutes": round(e["minutes"], 1),
            "cc:end": iso(e["end"]), "cc:alarmState": e["alarm_state"] or "none"}
