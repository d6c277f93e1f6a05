"""Reading the region back: centers, open alarms, room capacity and occupancy, a code's chain, EPCIS queries.

Everything is derived from the stored messages at query time, so a late or repeated message never leaves a stale
summary behind: a lot's place is its newest event, its chain is its events and those of the lots it was made from.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from hub import places
from hub.contract import code_of, short_step

IN_STORE = places.IN_STORE

def rows(conn: psycopg.Connection[Any], query: str | sql.Composed, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def centers(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every site with its kind (center or vehicle, from its `site` message), its state (online/offline: the
    retained status or the Last Will) and uplink lag."""
    return rows(conn, """SELECT c.site, c.name, c.kind, c.timezone, c.lat, c.lon, c.state, c.state_ts, c.last_ts,
                                c.lag_ms,
                                (extract(epoch FROM c.last_received) * 1000)::bigint AS last_received,
                                (SELECT count(*) FROM rooms r WHERE r.site = c.site) AS rooms
                         FROM centers c ORDER BY c.site""")


def open_alarms(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Alarms still open or acknowledged anywhere in the region, oldest first, with who acknowledged them."""
    return rows(conn, """SELECT a.site, c.name AS center, a.id, a.state, a.zone, r.name AS room, a.sensor, a.kind,
                                a.value, a.opened, a.ts, a.acked_by, a.acked_ts
                         FROM alarms a LEFT JOIN centers c USING (site)
                              LEFT JOIN rooms r ON r.site = a.site AND r.zone = a.zone
                         WHERE a.state IN ('open', 'acknowledged') ORDER BY a.opened NULLS LAST, a.site, a.id""")


def lots_in_store(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Each lot whose newest event puts it in a room (commissioned, stored or received there, not consumed)."""
    return rows(conn, "SELECT lot, site, zone, unit, quantity FROM lot_places WHERE in_store ORDER BY lot")


CAPACITY = """SELECT r.site, c.name AS center, r.zone, r.name, r.capacity, r.unit, r.commodity, count(p.lot) AS lots,
                     COALESCE(sum(p.quantity) FILTER (WHERE p.unit = r.unit), 0) AS occupied
              FROM rooms r JOIN centers c USING (site)
                   LEFT JOIN lot_places p ON p.in_store AND p.site = r.site AND p.zone = r.zone
              WHERE c.kind <> 'vehicle'
              GROUP BY r.site, r.zone, c.name
              ORDER BY r.site, r.zone"""


def capacity(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Per room: configured capacity (from the box's `site` message), lots in it and their quantity in that unit.
    A vehicle's compartments are not cold rooms of the region: left out.

    From `lot_places` (hub/places.py), one row per code kept at write time, and only its in-store rows (a partial
    index): no longer every event of the history (docs/hub.md, Scale)."""
    out = rows(conn, CAPACITY)
    for room in out:
        room["free"] = None if room["capacity"] is None else room["capacity"] - room["occupied"]
    return out


def place_names(conn: psycopg.Connection[Any]) -> dict[tuple[str, str | None], str]:
    """(site, None) -> the center's or vehicle's name, (site, zone) -> "name · room name": what the trace page says."""
    out: dict[tuple[str, str | None], str] = {}
    for r in rows(conn, """SELECT c.site, c.name AS center, r.zone, r.name FROM centers c
                           LEFT JOIN rooms r USING (site) ORDER BY c.site, r.zone"""):
        center = r["center"] or r["site"]
        out[r["site"], None] = center
        if r["zone"] is not None:
            out[r["site"], r["zone"]] = f"{center} · {r['name'] or r['zone']}"
    return out


LINEAGE = """WITH RECURSIVE lineage(lot, depth) AS (
                 SELECT %(code)s::text, 0
                 UNION
                 SELECT i.lot, lineage.depth + 1 FROM lineage
                   JOIN event_lots o ON o.lot = lineage.lot AND o.role = 'output'
                   JOIN event_lots i ON i.event_id = o.event_id AND i.role = 'input'
                 WHERE lineage.depth < 32)"""


@dataclass
class Chain:
    """A code's custody: the codes it came from, its events in time order, and the stays and transits they make."""

    code: str
    lots: list[str]
    events: list[dict[str, Any]]
    legs: list[dict[str, Any]] = field(default_factory=list)


def chain(conn: psycopg.Connection[Any], code: str) -> Chain:
    """The events of `code` and of every lot it was transformed from (upstream, to any depth), as stays."""
    lots = [r["lot"] for r in rows(conn, LINEAGE + " SELECT DISTINCT lot FROM lineage ORDER BY lot", {"code": code})]
    events = rows(conn, """SELECT e.event_id, e.site, e.type, e.biz_step, e.zone, e.lot, e.destination, e.source,
                                  (extract(epoch FROM e.event_time) * 1000)::bigint AS time, e.body
                           FROM events e WHERE e.event_id IN (SELECT event_id FROM event_lots WHERE lot = ANY(%s))
                           ORDER BY e.event_time, e.event_id""", (lots,))  # a list, not the CTE: the index is used
    return Chain(code, lots, events, legs(events))


def temperature(body: dict[str, Any], transit: bool = False) -> dict[str, float] | None:
    """min / max / mean of the first temperature summary in an event's sensorElementList: of a stay, or with
    `transit` of a trip a logger recorded (the box marks those `cc:transit` in the element's sensorMetadata).
    Alarm-condition reports (`exception`) are not summaries and are skipped."""
    for element in body.get("sensorElementList") or []:
        if not isinstance(element, dict):
            continue
        meta = element.get("sensorMetadata")
        if bool(isinstance(meta, dict) and meta.get("cc:transit")) != transit:
            continue
        for rep in element.get("sensorReport") or []:
            if isinstance(rep, dict) and "Temperature" in str(rep.get("type", "")) and "exception" not in rep:
                return {k: rep[f"{k}Value"] for k in ("min", "max", "mean")
                        if isinstance(rep.get(f"{k}Value"), int | float)}
    return None


def figures(body: dict[str, Any], transit: bool = False) -> dict[str, Any]:
    """What else the box reports with that summary: MKT, minutes outside the lot's range and the range, and the
    excursions (its ALARM_CONDITION reports). Keys with None / [] when the event carries none."""
    out: dict[str, Any] = {"mkt": None, "minutes_outside": None, "limits": None, "excursions": []}
    for element in body.get("sensorElementList") or []:
        meta = element.get("sensorMetadata") if isinstance(element, dict) else None
        if not isinstance(element, dict) or bool(isinstance(meta, dict) and meta.get("cc:transit")) != transit:
            continue
        reports = [r for r in element.get("sensorReport") or [] if isinstance(r, dict)]
        summary = next((r for r in reports if "Temperature" in str(r.get("type", "")) and "exception" not in r), None)
        if summary is None:
            continue
        out["mkt"], out["minutes_outside"] = _num(summary.get("cc:mkt")), _num(summary.get("cc:minutesOutside"))
        out["limits"] = {"low": _num(summary.get("cc:low")), "high": _num(summary.get("cc:high"))}
        out["excursions"] = [{"start": r.get("time"), "end": r.get("cc:end"), "peak": _num(r.get("value")),
                              "kind": r.get("cc:kind"), "limit": _num(r.get("cc:limit")),
                              "minutes": _num(r.get("cc:minutes")), "alarm_state": r.get("cc:alarmState")}
                             for r in reports if r.get("exception") == "ALARM_CONDITION"]
        return out
    return out


def _num(v: Any) -> float | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


ARRIVE = (*IN_STORE, "loading")  # the lot is somewhere: a room, or a vehicle's compartment
LEAVE = ("shipping", "unloading")  # it leaves: from a center, or off a vehicle


def is_vehicle(e: dict[str, Any]) -> bool:
    """The event is a vehicle box's (`cc:siteKind`): read from the event itself, whatever came first."""
    return isinstance(e.get("body"), dict) and e["body"].get("cc:siteKind") == "vehicle"


def causal(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Time order, except that a receiving comes after the shipping it answers, and so does every later event of
    that lot at the receiving site. Boxes' clocks differ (a Pi without an RTC before NTP, plain drift), so a short
    hop can be received "before" it was shipped by the other clock; taken in time order, the receiving would end
    the stay at the shipping site and the shipping's temperature report would land on the wrong stay (the
    two-box region test saw it: B's clock 0.35 s behind A's at 120x). The n-th receiving at d from s answers
    the n-th shipping from s to d."""
    shipped: dict[tuple[str, str], int] = {}  # (from, to) -> shippings emitted
    received: dict[tuple[str, str], int] = {}  # (from, to) -> receivings emitted or waiting
    waiting: dict[str, list[dict[str, Any]]] = {}  # site -> its events held until their shipping is out
    wanted: dict[str, tuple[tuple[str, str], int]] = {}  # site -> the shipping its first held event waits for
    out: list[dict[str, Any]] = []

    def release(route: tuple[str, str]) -> None:
        site = route[1]
        if site in wanted and wanted[site][0] == route and shipped.get(route, 0) >= wanted[site][1]:
            del wanted[site]
            first, *rest = waiting.pop(site)
            out.append(first)  # the receiving itself, already counted
            for held in rest:
                take(held)

    def take(e: dict[str, Any]) -> None:
        site = e["site"]
        if site in waiting:
            waiting[site].append(e)
            return
        if e["biz_step"] in ("receiving", "loading") and e["source"]:
            route = (e["source"], site)
            received[route] = n = received.get(route, 0) + 1
            if shipped.get(route, 0) < n:
                waiting[site], wanted[site] = [e], (route, n)
                return
        out.append(e)
        if e["biz_step"] in LEAVE and e["destination"]:
            route = (site, e["destination"])
            shipped[route] = shipped.get(route, 0) + 1
            release(route)

    for e in events:
        take(e)
    for held in waiting.values():  # a shipping never reported (a box still offline): as they came
        out.extend(held)
    return out


def legs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stays (a site and room, from its arrival to its leaving), vehicle legs (a vehicle box's compartment, from
    loading to unloading: kind "vehicle") and transits (shipped to a destination), in causal order (`causal`).

    A transit into or off a vehicle that no logger recorded is left out: the vehicle leg is the trip, with its
    compartment's figures; the stay before it ends at the shipping, the vehicle leg starts at the loading."""
    out: list[dict[str, Any]] = []

    def close(leg: dict[str, Any], e: dict[str, Any]) -> None:
        """The event that ends a leg carries its report: a stay's (shipping, a move), or a trip a logger recorded
        (the receiving, in an element marked `cc:transit`)."""
        leg["until"] = e["time"]
        transit = leg["kind"] == "transit"
        if transit or temperature(e["body"]) is not None:
            leg["temperature"] = temperature(e["body"], transit=transit)
            leg |= figures(e["body"], transit=transit)

    for e in causal(events):
        step, here = e["biz_step"], (e["site"], e["zone"])
        kind = "vehicle" if is_vehicle(e) else "stay"
        cur = out[-1] if out and out[-1]["until"] is None else None
        if step in ARRIVE and e["zone"]:
            if cur and (cur["kind"] == kind and (cur["site"], cur["zone"]) == here):
                continue
            if cur:
                close(cur, e)
                if cur["kind"] == "transit" and cur["temperature"] is None and (kind == "vehicle" or cur["vehicle"]):
                    out.pop()
            out.append({"kind": kind, "site": e["site"], "zone": e["zone"], "since": e["time"], "until": None,
                        "temperature": None, **figures({})})
        elif step in LEAVE:
            if cur:
                close(cur, e)
            out.append({"kind": "transit", "site": e["site"], "zone": None, "destination": e["destination"],
                        "vehicle": is_vehicle(e), "since": e["time"], "until": None, "temperature": None,
                        **figures({})})
        elif cur and step and temperature(e["body"]):
            cur["temperature"] = temperature(e["body"])
            cur |= figures(e["body"])
    return out


def _token(ms: int, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{ms}|{event_id}".encode()).decode()


def _untoken(token: str) -> tuple[int, str]:
    try:
        ms, ident = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        return int(ms), ident
    except ValueError:
        raise ValueError(f"nextPageToken: {token!r} is not one this hub gave out") from None


@dataclass(frozen=True)
class EventQuery:
    """The subset of EPCIS 2.0 SimpleEventQuery parameters the hub answers (times as epoch ms)."""

    biz_steps: tuple[str, ...] = ()
    epcs: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    ge_time: int | None = None
    lt_time: int | None = None
    per_page: int = 100
    page_token: str | None = None


def epcis_events(conn: psycopg.Connection[Any], q: EventQuery) -> tuple[list[dict[str, Any]], str | None]:
    """The events matching `q` in (eventTime, eventID) order, and the token of the next page (None at the end)."""
    where: list[sql.Composable] = [sql.SQL("TRUE")]
    args: list[Any] = []
    if q.biz_steps:
        where.append(sql.SQL("e.biz_step = ANY(%s)"))
        args.append([short_step(s) for s in q.biz_steps])
    if q.epcs:
        where.append(sql.SQL("e.event_id IN (SELECT event_id FROM event_lots WHERE lot = ANY(%s))"))
        args.append([code_of(e) for e in q.epcs])  # the lot's URI or its bare code, stored as the code
    if q.sites:
        where.append(sql.SQL("e.site = ANY(%s)"))
        args.append(list(q.sites))
    for bound, op in ((q.ge_time, ">="), (q.lt_time, "<")):
        if bound is not None:
            where.append(sql.SQL("e.event_time {} to_timestamp(%s / 1000.0)").format(sql.SQL(op)))
            args.append(bound)
    if q.page_token:
        ms, ident = _untoken(q.page_token)
        where.append(sql.SQL("(e.event_time, e.event_id) > (to_timestamp(%s / 1000.0), %s)"))
        args += [ms, ident]
    query = sql.SQL("""SELECT e.body, e.event_id, (extract(epoch FROM e.event_time) * 1000)::bigint AS ms
                       FROM events e WHERE {} ORDER BY e.event_time, e.event_id LIMIT %s""").format(
        sql.SQL(" AND ").join(where))
    found = rows(conn, query, [*args, q.per_page + 1])
    more = len(found) > q.per_page
    found = found[: q.per_page]
    return [r["body"] for r in found], (_token(found[-1]["ms"], found[-1]["event_id"]) if more else None)
