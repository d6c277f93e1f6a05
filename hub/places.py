"""Where each lot is now: one `lot_places` row per code, kept newest-wins as its events are stored.

Capacity and occupancy per room used to be worked out on every request from each lot's newest event
(`DISTINCT ON` over every `event_lots` row joined to `events`): a scan of the whole history that grows with every
day kept (docs/hub.md, Scale). The row is decided by the same rule: the newest event time wins, on a tie the event
that consumes the lot (a transformation's input), then the greater eventID, so the row is the same whatever order
and however often the events arrive. Quantity and unit are read once here, at write time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from hub.contract import Event, code_of

IN_STORE = ("commissioning", "storing", "receiving")
# UN/CEFACT Rec. 20 codes of an EPCIS quantity -> (the room capacity unit of the site message, factor)
UOM = {"TNE": ("t", 1.0), "KGM": ("t", 0.001), "XPX": ("pallets", 1.0), "MTQ": ("m3", 1.0)}


@dataclass(frozen=True)
class Place:
    """A lot's newest event, as much of it as capacity needs."""

    lot: str
    event_id: str
    event_ms: int
    consumed: bool  # the event names the lot as an input: it was split, merged or processed away
    site: str
    zone: str | None
    biz_step: str | None
    unit: str | None
    quantity: float | None

    @property
    def key(self) -> tuple[int, bool, str]:
        """Newer wins; on a tie the consuming event, then the greater eventID (order-free, unlike arrival)."""
        return (self.event_ms, self.consumed, self.event_id)

    @property
    def in_store(self) -> bool:
        return not self.consumed and self.biz_step in IN_STORE and bool(self.zone)


def quantity(body: dict[str, Any], lot: str) -> tuple[str, float] | None:
    """The lot's quantity in a room capacity unit, from the event's quantityList (or outputQuantityList)."""
    for q in body.get("quantityList") or body.get("outputQuantityList") or []:
        if isinstance(q, dict) and code_of(str(q.get("epcClass"))) == lot and q.get("uom") in UOM:
            unit, factor = UOM[q["uom"]]
            if isinstance(q.get("quantity"), int | float):
                return unit, float(q["quantity"]) * factor
    return None


def of(e: Event) -> list[Place]:
    """One place per code the event names."""
    return made(e.event_id, e.event_time_ms, e.site, e.zone, e.biz_step, ((r.lot, r.role) for r in e.lots), e.body)


def made(event_id: str, ms: int, site: str, zone: str | None, step: str | None,
         refs: Iterable[tuple[str, str]], body: dict[str, Any]) -> list[Place]:
    """The places of one event from its columns and its (code, role) references."""
    consumed: dict[str, bool] = {}
    for lot, role in refs:
        consumed[lot] = consumed.get(lot, False) or role == "input"
    out = []
    for lot, used in consumed.items():
        unit, amount = quantity(body, lot) or (None, None)
        out.append(Place(lot, event_id, ms, used, site, zone, step, unit, amount))
    return out


def newest(into: dict[str, Place], places: Iterable[Place]) -> None:
    for p in places:
        if p.lot not in into or into[p.lot].key < p.key:
            into[p.lot] = p


UPSERT = """INSERT INTO lot_places (lot, event_id, event_ms, consumed, site, zone, biz_step, in_store, unit, quantity)
            SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bool[], %b::text[], %b::text[], %b::text[],
                                 %b::bool[], %b::text[], %b::float8[])
            ON CONFLICT (lot) DO UPDATE SET event_id = EXCLUDED.event_id, event_ms = EXCLUDED.event_ms,
              consumed = EXCLUDED.consumed, site = EXCLUDED.site, zone = EXCLUDED.zone, biz_step = EXCLUDED.biz_step,
              in_store = EXCLUDED.in_store, unit = EXCLUDED.unit, quantity = EXCLUDED.quantity
            WHERE (EXCLUDED.event_ms, EXCLUDED.consumed, EXCLUDED.event_id)
                  > (lot_places.event_ms, lot_places.consumed, lot_places.event_id)"""


def write(conn: psycopg.Connection[Any], places: dict[str, Place]) -> None:
    """One statement, rows in code order: two workers' batches lock the rows they share in the same order."""
    if not places:
        return
    rows = [(p.lot, p.event_id, p.event_ms, p.consumed, p.site, p.zone, p.biz_step, p.in_store, p.unit, p.quantity)
            for _, p in sorted(places.items())]
    conn.execute(UPSERT, [list(col) for col in zip(*rows, strict=True)])


def backfill(conn: psycopg.Connection[Any]) -> int:
    """Fill an empty `lot_places` from the stored events (a hub whose tables predate it); the places written."""
    if conn.execute("SELECT EXISTS (SELECT 1 FROM lot_places)").fetchone() != (False,):
        return 0
    found: dict[str, Place] = {}
    query = """SELECT e.event_id, e.site, e.zone, e.biz_step, (extract(epoch FROM e.event_time) * 1000)::bigint,
                      e.body::text, array_agg(l.lot), array_agg(l.role)
               FROM events e JOIN event_lots l USING (event_id) GROUP BY e.event_id"""
    with conn.cursor(name="lot_places_backfill") as cur:
        cur.execute(query)
        for event_id, site, zone, step, ms, body, lots, roles in cur:
            newest(found, made(event_id, ms, site, zone, step, zip(lots, roles, strict=True), json.loads(body)))
    write(conn, found)
    return len(found)
