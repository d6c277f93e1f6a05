"""Readings and their series: the one place a reading must reach before it counts as received.

Stored compactly: a `series` row per (site, zone, sensor, quantity), kept in memory both ways, and
one narrow `readings` row per value. `append` commits before it returns, so whoever acknowledges
a reading upstream (MQTT, a buffered logger) does so only for committed rows. This repository is
the `JournalReader` that sinks get (`daemon/ports/sinks.py`).

Two rows of one series never share a millisecond (InfluxDB keeps one point per series and time): a time
stamped on arrival that is not after the series' last one moves to last + 1 ms, so a burst (a broker's
backlog after a restart) keeps every reading in arrival order. A device's own time is never moved, except
by 1 ms when it repeats with a different value; a device reading repeated exactly (a redelivery) is stored
once. Only those out-of-order device times cost a look-up; the common path is one dict per series.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from daemon.ports.model import Flag, Quality, Quantity, Reading, new_reading
from daemon.ports.sinks import Row
from daemon.storage import partitions
from daemon.storage.db import Database, Tx

log = logging.getLogger("coldchain.journal")
_QUANTITY = {q.value: q for q in Quantity}
_QUALITY = {int(q): q for q in Quality}
_COLS = "SELECT id, ts_ms, series, value, quality, note, flags FROM readings"
_LOG = "SELECT id, ts_ms, series, value, quality, note, flags FROM readings_log"
"""Readers by id take the table itself: the `readings` view (journal v9) serves readers by series and time."""
_CURSOR = "(SELECT value FROM rollup_state WHERE name = 'raw')"
_TAIL_NEWEST = f"""
WITH t AS (SELECT series, max(ts_ms) AS m FROM {{log}} WHERE id > {_CURSOR} GROUP BY series)
SELECT r.id, r.ts_ms, r.series, r.value, r.quality, r.note, r.flags FROM {{log}} r
JOIN t ON r.series = t.series AND r.ts_ms = t.m WHERE r.id > {_CURSOR}
"""
"""The unrolled tail's newest row per series: the tail is all in the newest partition (daemon/storage/partitions.py)."""
_INDEXED_NEWEST = ("SELECT l.id, l.ts_ms, l.series, l.value, l.quality, l.note, l.flags FROM {index} i "
                   "JOIN {log} l ON l.id = i.id WHERE i.series = ? ORDER BY i.ts_ms DESC LIMIT 1")
_FLAGS = {int(f): Flag(f) for f in range(4)}
_RECEIVED = int(Flag.RECEIVED)
STEP_BACK_MS = 60_000
"""An arrival time this far before its series' last one is a clock stepped back: kept (with a look-up that it
is free), not moved to last + 1 ms for the hour the clock needs to catch up."""

SeriesKey = tuple[str, str, str, str]  # (site, zone, sensor, quantity)
INSERT_ROWS = 140
"""Rows per INSERT statement: 980 bound values, under the 999 of SQLite builds before 3.32."""
_ROW = "(?, ?, ?, ?, ?, ?, ?)"


@functools.lru_cache(maxsize=16)
def _insert_sql(table: str, n: int) -> str:
    """The INSERT of `n` rows into a partition's table (a batch asks for the full size and its last, shorter one)."""
    return f"INSERT INTO {table} (id, ts_ms, series, value, quality, note, flags) VALUES {', '.join([_ROW] * n)}"


class Readings:
    """The `readings` and `series` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.gate: Callable[[], None] | None = None
        """Called before readings are written; raises to refuse them (the disk reserve keeps space for alarms)."""
        self._series: dict[SeriesKey, int] = {}
        self._series_rev: dict[int, SeriesKey] = {}
        self._last_ms: dict[int, int] = {}
        """Newest stored ts_ms per series, filled as series are written (the writer is the only one)."""
        self._stepped: set[int] = set()  # series whose arrival time went back past STEP_BACK_MS (logged once)
        self._load_series()
        # seeded from the journal: the view's max per series would scan the unrolled tail once per series
        self._last_ms = {int(row[2]): int(row[1]) for row in self._newest_rows()}

    def _load_series(self) -> None:
        for sid, site, zone, sensor, qty in self._db.read("SELECT id, site, zone, sensor, quantity FROM series"):
            self._series[(site, zone, sensor, qty)] = sid
            self._series_rev[sid] = (site, zone, sensor, qty)

    def _series_id(self, tx: Tx, r: Reading) -> int:
        key = (r.site, r.zone, r.sensor, r.quantity._value_)  # `_value_`: the enum's `value` property, per reading
        sid = self._series.get(key)
        if sid is None:
            cur = tx.execute("INSERT INTO series (site, zone, sensor, quantity) VALUES (?, ?, ?, ?)", key)
            sid = int(cur.lastrowid or 0)
            self._series[key] = sid
            self._series_rev[sid] = key
        return sid

    def append(self, readings: Sequence[Reading]) -> list[Reading]:
        """Write a batch in one transaction; returns the stored readings with their journal ids (and times made
        distinct); a device reading repeated exactly is left out (see the module docstring)."""
        if not readings:
            return []
        if self.gate is not None:
            self.gate()
        try:
            with self._db.transaction() as tx:
                return self.append_tx(tx, readings)
        except BaseException:
            self.rolled_back()
            raise

    def append_tx(self, tx: Tx, readings: Sequence[Reading]) -> list[Reading]:
        """`append` inside the caller's transaction (the pipeline commits a driver's receipts with it). If that
        transaction fails, even at its COMMIT, the caller must call `rolled_back()`.

        Rows go in by INSERT_ROWS per statement, not one `execute` each: each statement lets go of the GIL
        once, and taking it back from the event loop and paho's thread made the writer wait ~55 of its
        ~73 µs per reading in a backlog drain (its own CPU: ~16 µs; bench/ingest.py, docs/benchmarks.md)."""
        out: list[Reading] = []
        last = dict(self._last_ms)
        # the newest partition, and ids given here: a partition's table starts empty, but ids rise across them
        table = partitions.log_table(partitions.current(tx))
        top = tx.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]
        rid = int(top if top is not None else tx.execute("SELECT id FROM readings_top").fetchone()[0])
        rows: list[tuple[Any, ...]] = []
        written = functools.partial(self._insert, tx, table, rows)
        series = self._series
        for r in readings:
            # the common cases inline (a known series; a time after its last, or an arrival time within
            # STEP_BACK_MS of it), as _series_id and _distinct_ms decide them; the rest through those
            flags = int(r.flags)
            sid = series.get((r.site, r.zone, r.sensor, r.quantity._value_))
            if sid is None:
                sid = self._series_id(tx, r)
            ts_ms = round(r.ts * 1000)
            top = last.get(sid)
            if top is not None and ts_ms > top:
                last[sid] = ts_ms
                stored = ts_ms
            elif top is not None and flags & _RECEIVED and ts_ms > top - STEP_BACK_MS:
                last[sid] = stored = top + 1
            else:
                moved = self._distinct_ms(tx, sid, r, last, written)
                if moved is None:
                    continue
                stored = moved
            rid += 1
            rows.append((rid, stored, sid, r.value, int(r.quality), r.note or None, flags or None))
            out.append(new_reading(r.site, r.zone, r.sensor, r.quantity, r.value,
                                   r.ts if stored == ts_ms else stored / 1000, r.quality, r.note, rid, r.flags))
            if len(rows) >= INSERT_ROWS:
                written()
        written()
        self._last_ms = last  # a later failure of the transaction only leaves them ahead: still distinct
        return out

    @staticmethod
    def _insert(tx: Tx, table: str, rows: list[tuple[Any, ...]]) -> None:
        """Insert the rows gathered so far in one statement (a failure fails the caller's transaction whole)."""
        if rows:
            tx.execute(_insert_sql(table, len(rows)), [v for row in rows for v in row])
            rows.clear()

    def rolled_back(self) -> None:
        """The transaction of an `append_tx` failed: series rows inserted in it are gone (a disk full at COMMIT
        too; keeping their ids would fail the next insert on its foreign key)."""
        self._series.clear()
        self._series_rev.clear()
        self._load_series()

    def _distinct_ms(self, tx: Tx, sid: int, r: Reading, last: dict[int, int],
                     written: Callable[[], None]) -> int | None:
        """The millisecond `r` is stored at, or None for an exact repeat of a stored device reading.
        `written()` inserts the rows gathered so far: called before any look-up in the table, which must see them."""
        ts_ms = round(r.ts * 1000)
        top = last.get(sid)
        if top is None:
            written()
            row = tx.execute("SELECT max(ts_ms) FROM readings WHERE series = ?", (sid,)).fetchone()
            top = -1 if row[0] is None else int(row[0])
        if ts_ms > top:
            last[sid] = ts_ms
            return ts_ms
        received = int(r.flags) & _RECEIVED  # ints: an IntFlag `&` costs ~1 µs, once per reading here
        if received and ts_ms > top - STEP_BACK_MS:
            last[sid] = top + 1
            return top + 1
        last[sid] = top
        if received and sid not in self._stepped:
            self._stepped.add(sid)
            log.warning("sensor %s (%s): arrival time %.3f is %.0f s before its last reading; the clock stepped "
                        "back? kept at its time (logged once per series)", r.sensor, r.quantity.value, r.ts,
                        (top - ts_ms) / 1000)
        written()
        return self._free_ms(tx, sid, r, ts_ms)

    @staticmethod
    def _free_ms(tx: Tx, sid: int, r: Reading, ts_ms: int) -> int | None:
        """An out-of-order time: kept if free; a device reading stored there already with the same value and
        quality is a repeat (None); else the next free millisecond."""
        while True:
            row = tx.execute("SELECT value, quality FROM readings WHERE series = ? AND ts_ms = ? LIMIT 1",
                             (sid, ts_ms)).fetchone()
            if row is None:
                return ts_ms
            if not r.flags & Flag.RECEIVED and row[0] == r.value and row[1] == int(r.quality):
                return None
            ts_ms += 1

    def _row(self, row: tuple[Any, ...]) -> Reading:
        rid, ts_ms, sid, value, quality, note, flags = row
        site, zone, sensor, qty = self._series_rev.get(sid) or self._refresh_series(sid)
        # dict look-ups, not Quantity(qty) / Quality(q): the enum calls were a third of read_after (py-spy)
        return Reading(site, zone, sensor, _QUANTITY[qty], value, ts_ms / 1000, _QUALITY[quality], note or "", rid,
                       _FLAGS[flags or 0])

    def _refresh_series(self, sid: int) -> SeriesKey:
        row = self._db.one("SELECT site, zone, sensor, quantity FROM series WHERE id = ?", (sid,))
        assert row is not None, f"series {sid} of a stored reading"
        key = (row[0], row[1], row[2], row[3])
        self._series_rev[sid] = key
        return key

    def read_after(self, last_id: int, limit: int) -> list[Reading]:
        """Readings with id > last_id in journal order, for forwarders."""
        return [self._row(r) for r in self.read_rows_after(last_id, limit)]

    def read_rows_after(self, last_id: int, limit: int) -> list[Row]:
        """`read_after` as stored rows, for sinks that encode rows themselves (see `series_key`)."""
        return self._db.read(f"{_LOG} WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))

    def read_values_after(self, last_id: int, limit: int) -> tuple[int, list[tuple[int, int, float | None]]]:
        """`read_rows_after` in three columns, for a sink's fast path: (id of the last row, [(ts_ms, series,
        value)]); value is None for a row that is not GOOD or has no value (read that batch as rows).
        Fewer Python objects than full rows: reading rows was a third of a backlog drain's CPU (py-spy)."""
        top = self._db.one("SELECT max(id) FROM (SELECT id FROM readings_log WHERE id > ? ORDER BY id LIMIT ?)",
                           (last_id, limit))
        last = top[0] if top else None
        if last is None:
            return last_id, []
        return last, self._db.read(
            "SELECT ts_ms, series, CASE WHEN quality = 0 AND (flags IS NULL OR flags & 1 = 0) THEN value END "
            "FROM readings_log WHERE id > ? AND id <= ? ORDER BY id", (last_id, last))

    def series_key(self, sid: int) -> SeriesKey:
        """(site, zone, sensor, quantity) of a series id."""
        return self._series_rev.get(sid) or self._refresh_series(sid)

    def row_reading(self, row: Row) -> Reading:
        return self._row(row)

    def max_id(self) -> int:
        return self._int("SELECT id FROM readings_top")

    def count(self) -> int:
        return self._int("SELECT COUNT(*) FROM readings_log")

    def _int(self, sql: str) -> int:
        row = self._db.one(sql)
        return int(row[0]) if row else 0

    @staticmethod
    def last_id(tx: Tx) -> int | None:
        """The newest reading's id inside a transaction (None: no readings), e.g. to date a clock step."""
        last = int(tx.execute("SELECT id FROM readings_top").fetchone()[0])
        return None if last == 0 else last

    def query(
        self,
        *,
        zone: str | None = None,
        sensor: str | None = None,
        quantity: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 10_000,
        newest_first: bool = False,
    ) -> list[Reading]:
        """Readings filtered by place and time range [start, end)."""
        sids = list(self.series_ids(zone=zone, sensor=sensor, quantity=quantity))
        if not sids:
            return []
        sql = f"{_COLS} WHERE series IN ({','.join('?' * len(sids))})"
        args: list[Any] = list(sids)
        if start is not None:
            sql += " AND ts_ms >= ?"
            args.append(round(start * 1000))
        if end is not None:
            sql += " AND ts_ms < ?"
            args.append(round(end * 1000))
        sql += f" ORDER BY ts_ms {'DESC' if newest_first else 'ASC'}, id LIMIT ?"
        args.append(limit)
        return [self._row(r) for r in self._db.read(sql, args)]

    def replayed_times(self, sid: int, start: float, end: float) -> list[float]:
        """Times of `sid`'s replayed readings in [start, end) (a partial index holds only those rows)."""
        rows = self._db.read("SELECT ts_ms FROM readings WHERE series = ? AND ts_ms >= ? AND ts_ms < ? AND flags & 1 "
                             "ORDER BY ts_ms", (sid, round(start * 1000), round(end * 1000)))
        return [ts / 1000 for (ts,) in rows]

    def series_ids(
        self, *, zone: str | None = None, sensor: str | None = None, quantity: str | None = None
    ) -> dict[int, SeriesKey]:
        """Series id -> (site, zone, sensor, quantity) for those matching the filters."""
        return {
            sid: key
            for key, sid in list(self._series.items())
            if (zone is None or key[1] == zone) and (sensor is None or key[2] == sensor)
            and (quantity is None or key[3] == quantity)
        }

    def latest(self) -> list[Reading]:
        """The newest reading of every series (to seed the live view after a restart)."""
        return [self._row(r) for r in self._newest_rows()]

    def _newest_rows(self) -> list[tuple[Any, ...]]:
        """Per series the row with the largest ts_ms: one pass over the unrolled tail, one index seek per series."""
        best: dict[int, tuple[Any, ...]] = {}
        with self._db.snapshot():
            ks = self._db.read("SELECT k, max_ts FROM raw_partitions ORDER BY k DESC")
            for row in self._db.read(_TAIL_NEWEST.format(log=partitions.log_table(int(ks[0][0])))):
                if row[2] not in best or row[1] > best[row[2]][1]:
                    best[row[2]] = row
            for sid in list(self._series_rev):
                for k, max_ts in ks:  # newest first; an older one holds a newer time only by a late reading
                    if max_ts is None or (sid in best and best[sid][1] >= max_ts):
                        continue
                    sql = _INDEXED_NEWEST.format(index=partitions.index_table(int(k)), log=partitions.log_table(int(k)))
                    one = self._db.one(sql, (sid,))
                    if one is not None and (sid not in best or one[1] > best[sid][1]):
                        best[sid] = one
        return list(best.values())

