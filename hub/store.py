"""Writing the region into PostgreSQL: every write idempotent and order-free, so a batch can be redone whole.

Workers of one shared subscription receive a site's messages in any order and QoS 1 may deliver one twice, so
each write either keys on the message's own identity (eventID, (site, alert, state)) or keeps the newest by the
box's timestamp; applying the same messages in any order, any number of times, leaves the same rows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg

from hub import places
from hub.contract import Alarm, BadMessage, Event, Reading, Record, Site, Status

SCHEMA = resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")
log = logging.getLogger("coldchain.hub")
RANK = {"open": 0, "acknowledged": 1, "resolved": 2, "closed": 3}


def create(conn: psycopg.Connection[Any]) -> None:
    """The tables, if they are not there yet (every statement is IF NOT EXISTS), and `lot_places` filled from the
    events if a hub from before it left it empty.

    Workers started together all run this; IF NOT EXISTS alone races (two CREATE TABLEs of one name collide in
    pg_type), so the DDL runs under a transaction-level advisory lock, one worker after the other."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('coldchain-hub schema'))")
        conn.execute(SCHEMA)
        filled = places.backfill(conn)
        if filled:
            log.info("lot_places filled from the stored events: %d codes", filled)


@dataclass
class Later:
    """What a transaction writes once, just before its commit, in one order for every worker: alerts, then lots'
    places, then centers, each sorted by key.

    These rows are shared between workers (every worker gets every center's status and site, and any of them a
    center's events, an alert's changes or a lot's next event), so each lock is held until the commit; taken last
    and in one order, a batch holds them briefly and two workers' batches cannot deadlock on them. Status and site
    messages wait here too: written as they came, they locked a center's row out of order (the bench counted
    the redone batches, docs/hub.md)."""

    touches: dict[str, int] = field(default_factory=dict)
    alerts: set[tuple[str, str]] = field(default_factory=set)
    places: dict[str, places.Place] = field(default_factory=dict)
    centers: dict[str, list[Status | Site]] = field(default_factory=dict)
    done: list[tuple[Status | Site, str]] = field(default_factory=list)  # "stored", "duplicate" or "refused: ..."

    def touch(self, site: str, ts: int) -> None:
        """Of several times of one center only the newest matters: _touch with the same `now` keeps the maximum."""
        if site not in self.touches or self.touches[site] < ts:
            self.touches[site] = ts

    def finish(self, conn: psycopg.Connection[Any], now_ms: int) -> None:
        """The deferred writes; each status or site message's outcome goes to `done`."""
        for site, ident in sorted(self.alerts):
            _rebuild(conn, site, ident)
        places.write(conn, self.places)
        for site in sorted(self.touches.keys() | self.centers.keys()):
            for record in self.centers.get(site, ()):
                self.done.append((record, _center(conn, record)))
            if site in self.touches:
                try:
                    with conn.transaction():  # a savepoint: a time PostgreSQL cannot hold loses only that lag
                        _touch(conn, site, self.touches[site], now_ms)
                except psycopg.DataError as exc:
                    log.warning("uplink lag of %s not kept: %s", site, str(exc).splitlines()[0])
        self.touches.clear()
        self.alerts.clear()
        self.places.clear()
        self.centers.clear()


def apply(conn: psycopg.Connection[Any], record: Record, now_ms: int | None = None) -> str:
    """Store one record in a transaction of its own (a savepoint inside the caller's); "stored" or "duplicate"
    (or "refused: <why>" for a status or site message PostgreSQL cannot hold)."""
    now_ms = round(time.time() * 1000) if now_ms is None else now_ms
    with conn.transaction():
        later = Later()
        outcome = write(conn, record, later)
        later.finish(conn, now_ms)
        return later.done[0][1] if later.done else outcome


def write(conn: psycopg.Connection[Any], record: Record, later: Later) -> str:
    """The record's own rows now; its center's rows, its alert's and its lots' places go to `later` (see Later).

    Returns "stored" or "duplicate" (nothing changed, e.g. a redelivery), or "later" for a status or site message,
    whose outcome `later.finish` puts in `later.done`."""
    if isinstance(record, Status | Site):
        later.centers.setdefault(record.site, []).append(record)
        return "later"
    if isinstance(record, Alarm):
        outcome = _alarm(conn, record)
        if outcome == "stored":
            later.alerts.add((record.site, record.id))
    elif isinstance(record, Event):
        outcome = _event(conn, record)
        if outcome == "stored":
            places.newest(later.places, places.of(record))
    else:
        assert isinstance(record, Reading)
        outcome = "stored"
    later.touch(record.site, record.event_time_ms if isinstance(record, Event) else record.ts)
    return outcome


def _center(conn: psycopg.Connection[Any], record: Status | Site) -> str:
    """A status or site message, in a savepoint: one PostgreSQL refuses (a NUL in a name, a ts beyond bigint) is
    refused alone, the batch goes on."""
    try:
        with conn.transaction():
            conn.execute("INSERT INTO centers (site) VALUES (%s) ON CONFLICT DO NOTHING", (record.site,))
            return _status(conn, record) if isinstance(record, Status) else _site(conn, record)
    except psycopg.DataError as exc:
        return f"refused: PostgreSQL cannot store it: {exc}".splitlines()[0]


def write_many(conn: psycopg.Connection[Any], records: Sequence[Record], later: Later) -> list[str]:
    """What `write` does for each record, with a batch's events, their lots and alarm changes as one INSERT each.

    One statement per record cost a round trip each, and psycopg's executemany still adapts and sends one
    statement per row; columns as arrays through `unnest` are one statement per table, its rows in key order (a
    key another worker is inserting too, a redelivery, is waited for in the same order by both). Outcomes in the
    order of `records` (a repeat within the batch is a duplicate; "later" for status and site, see `write`). A
    DataError aborts the lot: the caller redoes the batch one record (one savepoint) at a time to find the refused
    ones."""
    out: dict[int, str] = {}
    events = [(i, r) for i, r in enumerate(records) if isinstance(r, Event)]
    alarms = [(i, r) for i, r in enumerate(records) if isinstance(r, Alarm)]
    event_rows = sorted((_event_row(e) for _, e in events), key=lambda r: r[0])
    new = _first_new(events, _new_keys(conn, EVENTS_SQL, event_rows), lambda e: (e.event_id,))
    out.update({i: "stored" if i in new else "duplicate" for i, _ in events})
    lots = sorted((e.event_id, ref.lot, ref.role) for i, e in events if i in new for ref in e.lots)
    if lots:
        conn.execute(LOTS_SQL, [list(col) for col in zip(*lots, strict=True)])
    for i, e in events:
        if i in new:
            places.newest(later.places, places.of(e))
    change_rows = sorted((_change_row(a) for _, a in alarms), key=lambda r: r[:3])
    changed = _first_new(alarms, _new_keys(conn, CHANGES_SQL, change_rows), lambda a: (a.site, a.id, a.state))
    out.update({i: "stored" if i in changed else "duplicate" for i, _ in alarms})
    later.alerts.update((a.site, a.id) for i, a in alarms if i in changed)
    for i, r in enumerate(records):
        if isinstance(r, Event | Alarm):
            later.touch(r.site, r.event_time_ms if isinstance(r, Event) else r.ts)
        else:
            out[i] = write(conn, r, later)
    return [out[i] for i in range(len(records))]


def _new_keys(conn: psycopg.Connection[Any], sql: str, rows: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """One INSERT ... SELECT FROM unnest(columns) ON CONFLICT DO NOTHING RETURNING key: the keys that went in."""
    if not rows:
        return set()
    return {tuple(row) for row in conn.execute(sql, [list(col) for col in zip(*rows, strict=True)])}


def _first_new(items: list[tuple[int, Any]], new: set[tuple[Any, ...]], key: Any) -> set[int]:
    """The positions that stored a row: the first of each new key (a later copy in the batch is a duplicate)."""
    out = set()
    for i, item in items:
        if key(item) in new:
            new.discard(key(item))
            out.add(i)
    return out


def reject(conn: psycopg.Connection[Any], bad: BadMessage) -> None:
    """Keep the refusal where the pages can count it (and the log names it)."""
    with conn.transaction():
        conn.execute("INSERT INTO rejected (topic, reason) VALUES (%s, %s)", (bad.topic, bad.reason))


def _touch(conn: psycopg.Connection[Any], site: str, ts: int, now_ms: int) -> None:
    """The center exists; its newest data time, when that arrived and the lag between, move only forward.

    Data are readings, events and alarm changes, not status or site: a box back from a day offline says
    "online" at once, while its back-fill (oldest first) shows the lag shrinking from a day to none."""
    conn.execute(
        """INSERT INTO centers (site, last_ts, last_received, lag_ms)
           VALUES (%(site)s, %(ts)s, to_timestamp(%(now)s / 1000.0), %(lag)s)
           ON CONFLICT (site) DO UPDATE SET
             last_received = CASE WHEN centers.last_ts IS NULL OR EXCLUDED.last_ts >= centers.last_ts
                                  THEN EXCLUDED.last_received ELSE centers.last_received END,
             lag_ms = CASE WHEN centers.last_ts IS NULL OR EXCLUDED.last_ts >= centers.last_ts
                           THEN EXCLUDED.lag_ms ELSE centers.lag_ms END,
             last_ts = GREATEST(centers.last_ts, EXCLUDED.last_ts)""",
        {"site": site, "ts": ts, "now": now_ms, "lag": max(0, now_ms - ts)})


def _status(conn: psycopg.Connection[Any], s: Status) -> str:
    cur = conn.execute("UPDATE centers SET state = %s, state_ts = %s WHERE site = %s AND "
                       "(state_ts IS NULL OR state_ts < %s OR (state_ts = %s AND %s = 'offline'))",
                       (s.state, s.ts, s.site, s.ts, s.ts, s.state))
    return "stored" if cur.rowcount else "duplicate"


def _site(conn: psycopg.Connection[Any], s: Site) -> str:
    """Name, place and rooms from the newest `site` message; the UPDATE's row lock orders two at once."""
    cur = conn.execute("UPDATE centers SET name = %s, kind = %s, timezone = %s, lat = %s, lon = %s, site_ts = %s "
                       "WHERE site = %s AND (site_ts IS NULL OR site_ts < %s)",
                       (s.name, s.kind, s.timezone, s.lat, s.lon, s.ts, s.site, s.ts))
    if not cur.rowcount:
        return "duplicate"
    conn.execute("DELETE FROM rooms WHERE site = %s", (s.site,))
    with conn.cursor() as c:
        c.executemany("INSERT INTO rooms (site, zone, name, capacity, unit, commodity) VALUES (%s, %s, %s, %s, %s, %s)",
                      [(s.site, r.zone, r.name, r.capacity, r.unit, r.commodity) for r in s.rooms])
    return "stored"


EVENT_SQL = """INSERT INTO events (event_id, site, type, biz_step, event_time, zone, lot, destination, source, body)
               VALUES (%s, %s, %s, %s, to_timestamp(%s / 1000.0), %s, %s, %s, %s, %s::jsonb)
               ON CONFLICT (event_id) DO NOTHING"""
EVENTS_SQL = """INSERT INTO events (event_id, site, type, biz_step, event_time, zone, lot, destination, source, body)
                SELECT i, s, t, b, to_timestamp(ms / 1000.0), z, l, d, src, body::jsonb
                FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[],
                            %b::text[], %b::text[], %b::text[]) AS u(i, s, t, b, ms, z, l, d, src, body)
                ON CONFLICT (event_id) DO NOTHING RETURNING event_id"""
LOTS_SQL = """INSERT INTO event_lots (event_id, lot, role) SELECT * FROM unnest(%b::text[], %b::text[], %b::text[])
              ON CONFLICT DO NOTHING"""
CHANGE_SQL = """INSERT INTO alarm_changes (site, id, state, ts, zone, sensor, kind, value, by_user, text)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"""
CHANGES_SQL = """INSERT INTO alarm_changes (site, id, state, ts, zone, sensor, kind, value, by_user, text)
                 SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[],
                                      %b::text[], %b::float8[], %b::text[], %b::text[])
                 ON CONFLICT DO NOTHING RETURNING site, id, state"""


def _event_row(e: Event) -> tuple[Any, ...]:
    return (e.event_id, e.site, e.type, e.biz_step, e.event_time_ms, e.zone, e.lot, e.destination, e.source,
            json.dumps(e.body))


def _change_row(a: Alarm) -> tuple[Any, ...]:
    value = None if a.value is None else float(a.value)  # one type per array: an int among floats would not go
    return (a.site, a.id, a.state, a.ts, a.zone, a.sensor, a.kind, value, a.by, a.text)


def _event(conn: psycopg.Connection[Any], e: Event) -> str:
    if not conn.execute(EVENT_SQL, _event_row(e)).rowcount:
        return "duplicate"
    rows = [(e.event_id, ref.lot, ref.role) for ref in e.lots]
    if rows:
        conn.execute(LOTS_SQL, [list(col) for col in zip(*rows, strict=True)])
    return "stored"


def _alarm(conn: psycopg.Connection[Any], a: Alarm) -> str:
    """The change is kept once per (site, id, state); the alert's row is rebuilt from all its changes later."""
    return "stored" if conn.execute(CHANGE_SQL, _change_row(a)).rowcount else "duplicate"


def _rebuild(conn: psycopg.Connection[Any], site: str, ident: str) -> None:
    """An alert's row from all its changes, under an advisory lock held until the commit.

    Two workers each holding one uncommitted change of the alert: the one that takes the lock second waits for the
    first's commit, and its rebuild (a new snapshot) then sees both changes, so the row never ends at the older."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"alarm/{site}/{ident}",))
    conn.execute(
        """WITH c AS (SELECT *, array_position(ARRAY['open', 'acknowledged', 'resolved', 'closed'], state) - 1 AS rank
                      FROM alarm_changes WHERE site = %(site)s AND id = %(id)s),
                l AS (SELECT * FROM c ORDER BY ts DESC, rank DESC LIMIT 1)
           INSERT INTO alarms (site, id, state, rank, ts, opened, zone, sensor, kind, value, acked_by, acked_ts)
           SELECT l.site, l.id, l.state, l.rank, l.ts, (SELECT min(ts) FROM c WHERE state = 'open'), l.zone, l.sensor,
                  l.kind, COALESCE((SELECT value FROM c WHERE state = 'open'), l.value),
                  (SELECT by_user FROM c WHERE state = 'acknowledged'), (SELECT ts FROM c WHERE state = 'acknowledged')
           FROM l
           ON CONFLICT (site, id) DO UPDATE SET state = EXCLUDED.state, rank = EXCLUDED.rank, ts = EXCLUDED.ts,
             opened = EXCLUDED.opened, zone = EXCLUDED.zone, sensor = EXCLUDED.sensor, kind = EXCLUDED.kind,
             value = EXCLUDED.value, acked_by = EXCLUDED.acked_by, acked_ts = EXCLUDED.acked_ts""",
        {"site": site, "id": ident})
