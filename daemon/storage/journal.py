"""SQLite store-and-forward: readings, forward cursors, alert state, outbox, audit log.

The journal is the one place a reading must reach before it counts as received.
WAL mode with `synchronous=FULL`: a committed batch survives a power cut, and readers
(API, forwarders) never block the writer. Readings are stored compactly: a `series`
row per (site, zone, sensor, quantity) and one narrow row per value.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.ports.model import Quality, Quantity, Reading
from daemon.ports.sinks import AlarmEvent, Row

SCHEMA = [
    # version 1
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        site TEXT NOT NULL, zone TEXT NOT NULL, sensor TEXT NOT NULL, quantity TEXT NOT NULL,
        UNIQUE (site, zone, sensor, quantity)
    );
    CREATE TABLE readings (
        id INTEGER PRIMARY KEY,
        ts_ms INTEGER NOT NULL,
        series INTEGER NOT NULL REFERENCES series(id),
        value REAL,
        quality INTEGER NOT NULL DEFAULT 0,
        note TEXT
    );
    CREATE INDEX readings_series_ts ON readings (series, ts_ms);
    CREATE TABLE cursors (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL, updated REAL NOT NULL);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        zone TEXT NOT NULL, sensor TEXT, kind TEXT NOT NULL, severity TEXT NOT NULL,
        state TEXT NOT NULL,
        started REAL NOT NULL, fired REAL, acked REAL, acked_by TEXT, resolved REAL,
        value REAL, limit_value REAL, peak REAL, detail TEXT
    );
    CREATE UNIQUE INDEX alerts_open_key ON alerts (key) WHERE state IN ('pending', 'firing', 'acknowledged');
    CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),
        ts REAL NOT NULL, state TEXT NOT NULL, who TEXT NOT NULL, comment TEXT
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, alert_id INTEGER REFERENCES alerts(id),
        created REAL NOT NULL, contact TEXT NOT NULL, address TEXT NOT NULL,
        notifier TEXT NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, sent_at REAL, ref TEXT
    );
    CREATE INDEX outbox_pending ON outbox (state) WHERE state = 'pending';
    """,
    # version 2: escalation timers, channel fallback, template keys, mutes, incoming messages
    """
    ALTER TABLE alerts ADD COLUMN esc_step INTEGER;
    ALTER TABLE alerts ADD COLUMN esc_next REAL;
    ALTER TABLE outbox ADD COLUMN fallbacks TEXT;
    ALTER TABLE outbox ADD COLUMN msg_key TEXT;
    ALTER TABLE outbox ADD COLUMN params TEXT;
    ALTER TABLE outbox ADD COLUMN next_try REAL;
    CREATE TABLE mutes (
        id INTEGER PRIMARY KEY, zone TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
        reason TEXT NOT NULL, who TEXT NOT NULL, created REAL NOT NULL
    );
    CREATE TABLE incoming (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, channel TEXT NOT NULL, sender TEXT NOT NULL,
        text TEXT NOT NULL, alert_id INTEGER, outcome TEXT NOT NULL
    );
    """,
    # version 3: raw readings past storage.raw_retention end here (daemon/retention.py); since v6, every reading
    """
    CREATE TABLE rollup_5m (
        series INTEGER NOT NULL REFERENCES series(id),
        bucket_ms INTEGER NOT NULL,
        n INTEGER NOT NULL,
        min REAL, mean REAL, max REAL,
        faults INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (series, bucket_ms)
    ) WITHOUT ROWID;
    """,
    # version 4: delivery reports (SMS +CDS, cloud receipts) on the message they confirm
    """
    ALTER TABLE outbox ADD COLUMN delivered INTEGER;
    ALTER TABLE outbox ADD COLUMN delivery_detail TEXT;
    """,
    # version 5: lots (traceability codes) with their stays in zones, and the audit log of who changed what
    """
    CREATE TABLE lots (
        code TEXT PRIMARY KEY, commodity TEXT NOT NULL, quantity REAL, unit TEXT, origin TEXT,
        created REAL NOT NULL, created_by TEXT NOT NULL, checked_out REAL
    );
    CREATE TABLE lot_stays (
        id INTEGER PRIMARY KEY, lot TEXT NOT NULL REFERENCES lots(code), zone TEXT NOT NULL,
        start REAL NOT NULL, end REAL, who_in TEXT NOT NULL, who_out TEXT
    );
    CREATE INDEX lot_stays_lot ON lot_stays (lot, start);
    CREATE UNIQUE INDEX lot_stays_open ON lot_stays (lot) WHERE end IS NULL;
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, who TEXT NOT NULL, role TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT
    );
    CREATE INDEX audit_log_target ON audit_log (target, ts);
    """,
    # version 6: rollups of every reading, kept current from a cursor (daemon/rollups.py). rollup_5m now
    # counts every reading up to the `raw` cursor, not only those retention deleted; the cursor starts
    # at 0 and the `hourly` row asks for the hours of the rows retention made so far: the daemon's first
    # rolls backfill both, in small transactions. Raw rows may be missing only before `deleted_before`
    """
    CREATE TABLE rollup_1h (
        series INTEGER NOT NULL REFERENCES series(id),
        bucket_ms INTEGER NOT NULL,
        n INTEGER NOT NULL,
        min REAL, mean REAL, max REAL,
        faults INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (series, bucket_ms)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO rollup_state (name, value) VALUES ('raw', 0);
    INSERT INTO rollup_state (name, value) SELECT 'deleted_before', COALESCE(MAX(bucket_ms) + 300000, 0) FROM rollup_5m;
    INSERT INTO rollup_state (name, value) SELECT 'hourly', 0 WHERE EXISTS (SELECT 1 FROM rollup_5m);
    """,
]



SQLITE_FULL = 13


def disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" and for ENOSPC."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


_QUANTITY = {q.value: q for q in Quantity}
_QUALITY = {int(q): q for q in Quality}


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alarm as stored; `key` is unique among alarms that are not resolved."""

    id: int
    key: str
    zone: str
    sensor: str | None
    kind: str
    severity: str
    state: str
    started: float
    fired: float | None
    acked: float | None
    acked_by: str | None
    resolved: float | None
    value: float | None
    limit_value: float | None
    peak: float | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    alert_id: int | None
    created: float
    contact: str
    address: str
    notifier: str
    lang: str
    text: str
    state: str
    attempts: int
    last_error: str | None
    sent_at: float | None
    ref: str | None
    fallbacks: str | None = None
    msg_key: str | None = None
    params: str | None = None
    next_try: float | None = None


class Journal:
    """Thread-safe access to the journal file: one writer connection, one reader per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self.on_full: Callable[[], None] | None = None
        """Called when a write fails because the disk is full (the disk reserve gives its space back)."""
        self.readings_gate: Callable[[], None] | None = None
        """Called before readings are written; raises to refuse them (the disk reserve keeps space for alarms)."""
        self._db = self._connect()
        self._migrate()
        self._series: dict[tuple[str, str, str, str], int] = {}
        self._series_rev: dict[int, tuple[str, str, str, str]] = {}
        self._load_series()

    # -- connections

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA query_only=ON")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")  # in the try: a COMMIT refused by a full disk is rolled back too
            except BaseException as exc:
                if self._db.in_transaction:  # SQLite already rolled back after SQLITE_FULL / IOERR
                    self._db.execute("ROLLBACK")
                if self.on_full is not None and disk_full(exc):
                    self.on_full()
                raise

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """`read` calls inside see one state of the journal (one read transaction on this thread's reader)."""
        db = self._reader()
        if db.in_transaction:
            yield
            return
        db.execute("BEGIN")
        try:
            yield
        finally:
            db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for n, ddl in enumerate(SCHEMA[version:], start=version + 1):
                with self.transaction() as db:
                    for stmt in ddl.split(";"):
                        if stmt.strip():
                            db.execute(stmt)
                    db.execute(f"PRAGMA user_version={n}")

    def quick_check(self) -> str:
        """SQLite's own consistency check; 'ok' when the file is sound."""
        return str(self._reader().execute("PRAGMA quick_check").fetchone()[0])

    @property
    def run_mark(self) -> Path:
        """Exists while a daemon uses the journal; left behind by a power cut, SIGKILL or crash."""
        return self.path.with_name(self.path.name + ".running")

    def begin_run(self) -> str | None:
        """Mark the journal in use. After an unclean stop, returns `quick_check()`'s answer; else None."""
        result = self.quick_check() if self.run_mark.exists() else None
        self.run_mark.write_text(f"{os.getpid()}\n", encoding="utf-8")
        return result

    def end_run(self) -> None:
        """The daemon stopped cleanly: everything it acknowledged is committed."""
        self.run_mark.unlink(missing_ok=True)

    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    # -- readings

    def _load_series(self) -> None:
        for sid, site, zone, sensor, qty in self._db.execute("SELECT id, site, zone, sensor, quantity FROM series"):
            self._series[(site, zone, sensor, qty)] = sid
            self._series_rev[sid] = (site, zone, sensor, qty)

    def _series_id(self, db: sqlite3.Connection, r: Reading) -> int:
        key = (r.site, r.zone, r.sensor, r.quantity.value)
        sid = self._series.get(key)
        if sid is None:
            cur = db.execute("INSERT INTO series (site, zone, sensor, quantity) VALUES (?, ?, ?, ?)", key)
            sid = int(cur.lastrowid or 0)
            self._series[key] = sid
            self._series_rev[sid] = key
        return sid

    def append(self, readings: Sequence[Reading]) -> list[Reading]:
        """Write a batch in one transaction; returns the readings with their journal ids."""
        if not readings:
            return []
        if self.readings_gate is not None:
            self.readings_gate()
        out: list[Reading] = []
        try:
            with self.transaction() as db:
                for r in readings:
                    cur = db.execute(
                        "INSERT INTO readings (ts_ms, series, value, quality, note) VALUES (?, ?, ?, ?, ?)",
                        (round(r.ts * 1000), self._series_id(db, r), r.value, int(r.quality), r.note or None),
                    )
                    out.append(_with_id(r, int(cur.lastrowid or 0)))
        except BaseException:
            self._series.clear()
            self._series_rev.clear()
            self._load_series()  # series rows inserted in the failed transaction are gone
            raise
        return out

    def _row(self, row: tuple[Any, ...]) -> Reading:
        rid, ts_ms, sid, value, quality, note = row
        site, zone, sensor, qty = self._series_rev.get(sid) or self._refresh_series(sid)
        # dict look-ups, not Quantity(qty) / Quality(q): the enum calls were a third of read_after (py-spy)
        return Reading(site, zone, sensor, _QUANTITY[qty], value, ts_ms / 1000, _QUALITY[quality], note or "", rid)

    def _refresh_series(self, sid: int) -> tuple[str, str, str, str]:
        row = self._reader().execute("SELECT site, zone, sensor, quantity FROM series WHERE id = ?", (sid,)).fetchone()
        key = (row[0], row[1], row[2], row[3])
        self._series_rev[sid] = key
        return key

    def read_after(self, last_id: int, limit: int) -> list[Reading]:
        """Readings with id > last_id in journal order, for forwarders."""
        rows = self._reader().execute(
            "SELECT id, ts_ms, series, value, quality, note FROM readings WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, limit),
        )
        return [self._row(r) for r in rows]

    def read_rows_after(self, last_id: int, limit: int) -> list[Row]:
        """`read_after` as stored rows, for sinks that encode rows themselves (see `series_key`)."""
        return self._reader().execute(
            "SELECT id, ts_ms, series, value, quality, note FROM readings WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, limit),
        ).fetchall()

    def read_values_after(self, last_id: int, limit: int) -> tuple[int, list[tuple[int, int, float | None]]]:
        """`read_rows_after` in three columns, for a sink's fast path: (id of the last row, [(ts_ms, series,
        value)]); value is None for a row that is not GOOD or has no value (read that batch as rows).
        Fewer Python objects than full rows: reading rows was a third of a backlog drain's CPU (py-spy)."""
        db = self._reader()
        last = db.execute("SELECT max(id) FROM (SELECT id FROM readings WHERE id > ? ORDER BY id LIMIT ?)",
                          (last_id, limit)).fetchone()[0]
        if last is None:
            return last_id, []
        return last, db.execute(
            "SELECT ts_ms, series, CASE WHEN quality = 0 THEN value END FROM readings WHERE id > ? AND id <= ? "
            "ORDER BY id", (last_id, last)).fetchall()

    def series_key(self, sid: int) -> tuple[str, str, str, str]:
        """(site, zone, sensor, quantity) of a series id."""
        return self._series_rev.get(sid) or self._refresh_series(sid)

    def row_reading(self, row: Row) -> Reading:
        return self._row(row)

    def max_id(self) -> int:
        return int(self._reader().execute("SELECT COALESCE(MAX(id), 0) FROM readings").fetchone()[0])

    def count(self) -> int:
        return int(self._reader().execute("SELECT COUNT(*) FROM readings").fetchone()[0])

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
        sids = [
            sid
            for (_, z, s, q), sid in list(self._series.items())
            if (zone is None or z == zone) and (sensor is None or s == sensor) and (quantity is None or q == quantity)
        ]
        if not sids:
            return []
        sql = (
            "SELECT id, ts_ms, series, value, quality, note FROM readings "
            f"WHERE series IN ({','.join('?' * len(sids))})"
        )
        args: list[Any] = list(sids)
        if start is not None:
            sql += " AND ts_ms >= ?"
            args.append(round(start * 1000))
        if end is not None:
            sql += " AND ts_ms < ?"
            args.append(round(end * 1000))
        sql += f" ORDER BY ts_ms {'DESC' if newest_first else 'ASC'}, id LIMIT ?"
        args.append(limit)
        return [self._row(r) for r in self._reader().execute(sql, args)]

    def series_ids(
        self, *, zone: str | None = None, sensor: str | None = None, quantity: str | None = None
    ) -> dict[int, tuple[str, str, str, str]]:
        """Series id -> (site, zone, sensor, quantity) for those matching the filters."""
        return {
            sid: key
            for key, sid in list(self._series.items())
            if (zone is None or key[1] == zone) and (sensor is None or key[2] == sensor)
            and (quantity is None or key[3] == quantity)
        }

    def read(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only query on this thread's reader connection (for reports, lots, history)."""
        return [tuple(r) for r in self._reader().execute(sql, args)]

    def latest(self) -> list[Reading]:
        """The newest reading of every series (to seed the live view after a restart)."""
        rows = self._reader().execute(
            "SELECT r.id, r.ts_ms, r.series, r.value, r.quality, r.note FROM readings r "
            "JOIN (SELECT series, MAX(ts_ms) AS m FROM readings GROUP BY series) t "
            "ON r.series = t.series AND r.ts_ms = t.m"
        )
        return [self._row(r) for r in rows]

    # -- forward cursors

    def cursor(self, name: str) -> int:
        row = self._reader().execute("SELECT last_id FROM cursors WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_cursor(self, name: str, last_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO cursors (name, last_id, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET last_id = excluded.last_id, updated = excluded.updated",
                (name, last_id, time.time()),
            )

    # -- alerts and audit log

    _ALERT_COLS = (
        "id, key, zone, sensor, kind, severity, state, started, fired, acked, acked_by, resolved, "
        "value, limit_value, peak, detail"
    )

    def alerts(self, *, open_only: bool = False, zone: str | None = None, limit: int = 500) -> list[AlertRow]:
        sql = f"SELECT {self._ALERT_COLS} FROM alerts WHERE 1=1"
        args: list[Any] = []
        if open_only:
            sql += " AND state IN ('pending', 'firing', 'acknowledged')"
        if zone is not None:
            sql += " AND zone = ?"
            args.append(zone)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [AlertRow(*row) for row in self._reader().execute(sql, args)]

    def alert(self, alert_id: int) -> AlertRow | None:
        row = self._reader().execute(f"SELECT {self._ALERT_COLS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return AlertRow(*row) if row else None

    def events_after(self, last_id: int, limit: int, site: str) -> list[AlarmEvent]:
        """Audit-log entries with id > last_id, each with its alarm's place and kind, for sinks."""
        rows = self._reader().execute(
            "SELECT e.id, e.alert_id, e.ts, e.state, e.who, e.comment, a.zone, a.sensor, a.kind, a.severity, "
            "a.value, a.limit_value FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "WHERE e.id > ? ORDER BY e.id LIMIT ?",
            (last_id, limit),
        )
        return [AlarmEvent(r[0], r[1], r[2], r[3], r[4], r[5], site, *r[6:]) for r in rows]

    def max_event_id(self) -> int:
        return int(self._reader().execute("SELECT COALESCE(MAX(id), 0) FROM alert_events").fetchone()[0])

    def alert_events(self, alert_id: int) -> list[tuple[float, str, str, str | None]]:
        return list(
            self._reader().execute(
                "SELECT ts, state, who, comment FROM alert_events WHERE alert_id = ? ORDER BY id", (alert_id,)
            )
        )

    # -- outbox

    _OUTBOX_COLS = (
        "id, alert_id, created, contact, address, notifier, lang, text, state, attempts, last_error, sent_at, ref, "
        "fallbacks, msg_key, params, next_try"
    )

    def outbox(self, *, state: str | None = None, alert_id: int | None = None, limit: int = 500) -> list[OutboxRow]:
        sql = f"SELECT {self._OUTBOX_COLS} FROM outbox WHERE 1=1"
        args: list[Any] = []
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        if alert_id is not None:
            sql += " AND alert_id = ?"
            args.append(alert_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [OutboxRow(*row) for row in self._reader().execute(sql, args)]

    def claim_outbox(self, outbox_id: int) -> bool:
        """Mark a pending message `sending` before its channel is called; False if it was not pending."""
        with self.transaction() as db:
            cur = db.execute("UPDATE outbox SET state='sending', attempts=attempts+1 WHERE id=? AND state='pending'",
                             (outbox_id,))
            return cur.rowcount == 1

    def finish_outbox(self, outbox_id: int, state: str, error: str | None, ref: str | None,
                      next_try: float | None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state=?, last_error=?, ref=COALESCE(?, ref), next_try=?, "
                "sent_at=CASE WHEN ?='sent' THEN ? ELSE sent_at END WHERE id=?",
                (state, error, ref, next_try, state, time.time(), outbox_id),
            )

    def mark_delivered(self, notifier: str, ref: str, delivered: bool, detail: str) -> int | None:
        """Record a delivery report on the newest sent message of `notifier` with that reference.

        Modem references wrap at 256, so the newest match is the one the report is about."""
        with self.transaction() as db:
            row = db.execute("SELECT id FROM outbox WHERE notifier=? AND state='sent' AND ref=? ORDER BY id DESC "
                             "LIMIT 1", (notifier, ref)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE outbox SET delivered=?, delivery_detail=? WHERE id=?",
                       (1 if delivered else 0, detail or None, row[0]))
            return int(row[0])

    def delivery(self, outbox_id: int) -> tuple[int | None, str | None]:
        row = self._reader().execute("SELECT delivered, delivery_detail FROM outbox WHERE id=?",
                                     (outbox_id,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def due_escalations(self, now: float) -> list[int]:
        rows = self._reader().execute(
            "SELECT id FROM alerts WHERE state='firing' AND esc_next IS NOT NULL AND esc_next <= ? ORDER BY id", (now,)
        )
        return [int(r[0]) for r in rows]

    def alerts_told(self, *, sender_key: str, phone_key: Callable[[str], str]) -> list[int]:
        """Alarms about which a message went (or was queued) to this phone number."""
        rows = self._reader().execute("SELECT DISTINCT alert_id, address FROM outbox WHERE alert_id IS NOT NULL")
        return sorted({int(a) for a, addr in rows if phone_key(addr) == sender_key})

    def add_mute(self, zone: str, start: float, end: float, reason: str, who: str) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO mutes (zone, start, end, reason, who, created) VALUES (?,?,?,?,?,?)",
                             (zone, start, end, reason, who, time.time()))
            return int(cur.lastrowid or 0)

    def end_mute(self, mute_id: int, at: float) -> bool:
        with self.transaction() as db:
            return db.execute("UPDATE mutes SET end=? WHERE id=? AND end>?", (at, mute_id, at)).rowcount == 1

    def mutes(self, *, active_at: float | None = None) -> list[tuple[int, str, float, float, str, str]]:
        """(id, zone, start, end, reason, who), all or those still in force at `active_at`."""
        sql = "SELECT id, zone, start, end, reason, who FROM mutes"
        args: tuple[Any, ...] = ()
        if active_at is not None:
            sql += " WHERE end > ?"
            args = (active_at,)
        return [tuple(r) for r in self._reader().execute(sql + " ORDER BY id", args)]  # type: ignore[misc]

    def shift_timers(self, step: float, now: float) -> None:
        """The wall clock stepped by `step`: escalation and retry times, and mutes still in force at `now`
        (the old clock's time), move with it; stored history (readings, alarm times, audit) does not. The step
        itself goes to the audit log (`GET /api/v1/audit?target=clock`), with the last reading stamped before it,
        so whoever reads the history knows which stamps came from the old clock."""
        with self.transaction() as db:
            last = db.execute("SELECT max(id) FROM readings").fetchone()[0]
            db.execute("INSERT INTO audit_log (ts, who, role, action, target, detail) VALUES (?,?,?,?,?,?)",
                       (now + step, "coldchain", "system", "clock.step", "clock",
                        json.dumps({"step_s": round(step, 3), "last_reading_before": last})))
            db.execute("UPDATE alerts SET esc_next = esc_next + ? WHERE esc_next IS NOT NULL "
                       "AND state IN ('pending', 'firing')", (step,))
            db.execute("UPDATE outbox SET next_try = next_try + ? WHERE next_try IS NOT NULL AND state = 'pending'",
                       (step,))
            db.execute("UPDATE mutes SET start = start + ?, end = end + ? WHERE end > ?", (step, step, now))

    def due_outbox(self, now: float, limit: int = 200) -> list[OutboxRow]:
        """Pending messages whose retry time has come, oldest first."""
        sql = (f"SELECT {self._OUTBOX_COLS} FROM outbox WHERE state = 'pending' "
               "AND (next_try IS NULL OR next_try <= ?) ORDER BY id LIMIT ?")
        return [OutboxRow(*row) for row in self._reader().execute(sql, (now, limit))]


def _with_id(r: Reading, rid: int) -> Reading:
    return Reading(r.site, r.zone, r.sensor, r.quantity, r.value, r.ts, r.quality, r.note, rid)
