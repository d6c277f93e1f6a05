"""The journal's tables, as migrations: `SCHEMA[n]` takes a file at `PRAGMA user_version` n to n + 1.

A migration is never edited once released (boxes in the field run each one once); a change of the
tables is a new entry at the end. Each runs in one transaction (`daemon/storage/db.py`).
"""

from __future__ import annotations

from daemon.storage import partitions

# A rollup tier: per series and bucket, count, min, mean and max of GOOD values and the faults
_ROLLUP_TABLE = """
    CREATE TABLE {table} (
        series INTEGER NOT NULL REFERENCES series(id),
        bucket_ms INTEGER NOT NULL,
        n INTEGER NOT NULL,
        min REAL, mean REAL, max REAL,
        faults INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (series, bucket_ms)
    ) WITHOUT ROWID;
"""

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
    _ROLLUP_TABLE.format(table="rollup_5m"),
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
    _ROLLUP_TABLE.format(table="rollup_1h") + """
    CREATE TABLE rollup_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO rollup_state (name, value) VALUES ('raw', 0);
    INSERT INTO rollup_state (name, value) SELECT 'deleted_before', COALESCE(MAX(bucket_ms) + 300000, 0) FROM rollup_5m;
    INSERT INTO rollup_state (name, value) SELECT 'hourly', 0 WHERE EXISTS (SELECT 1 FROM rollup_5m);
    """,
    # version 7: reading flags (bit 1: the time is the arrival time of a reading a broker replayed from a
    # session's backlog, not its measurement time; `daemon/ports/model.py` Flag), and receipts: what a driver
    # stored with a commit (e.g. MQTT packet ids of messages not yet acknowledged) so that, after a kill, it
    # recognises a redelivered copy without looking each message up (`daemon/storage/receipts.py`)
    """
    ALTER TABLE readings ADD COLUMN flags INTEGER;
    CREATE INDEX readings_replayed ON readings (series, ts_ms) WHERE flags & 1;
    CREATE TABLE receipts (id INTEGER PRIMARY KEY, source TEXT NOT NULL, body BLOB NOT NULL);
    """,
    # version 8: the HACCP alarm workflow: the manager's close, the
    # value at acknowledgement and the re-escalation of an acknowledged alarm, and the corrective actions
    """
    ALTER TABLE alerts ADD COLUMN closed REAL;
    ALTER TABLE alerts ADD COLUMN closed_by TEXT;
    ALTER TABLE alerts ADD COLUMN ack_value REAL;
    ALTER TABLE alerts ADD COLUMN reescalated REAL;
    CREATE TABLE corrective_actions (
        id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),
        ts REAL NOT NULL, who TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL
    );
    CREATE INDEX corrective_actions_alert ON corrective_actions (alert_id, id);
    """,
    # version 9: readings laid out for flash (docs/robustness.md, "What the SD card is written"). The rows stay
    # in `readings_log` in arrival (id) order, with no index of their own, so a commit dirties the table's last
    # page or two. The (series, ts_ms) index, which made every commit dirty one index page per series on a big
    # journal, becomes `readings_by_series`, filled in bulk by the rollups' roll for the ids up to their `raw`
    # cursor (daemon/storage/rollups.py): one page per series per roll instead of per commit. The view
    # `readings` is both: rows up to the cursor through the index, the tail above it by a rowid range, so
    # readers by series and time keep their SQL. Writers and readers by id use `readings_log`; the triggers let
    # plain SQL (tools, tests) still insert into and delete from `readings`.
    """
    ALTER TABLE readings RENAME TO readings_log;
    CREATE TABLE readings_by_series (
        series INTEGER NOT NULL, ts_ms INTEGER NOT NULL, id INTEGER NOT NULL,
        PRIMARY KEY (series, ts_ms, id)
    ) WITHOUT ROWID;
    INSERT INTO readings_by_series (series, ts_ms, id)
    SELECT series, ts_ms, id FROM readings_log INDEXED BY readings_series_ts
    WHERE id <= (SELECT value FROM rollup_state WHERE name = 'raw') ORDER BY series, ts_ms, id;
    DROP INDEX readings_series_ts;
    CREATE VIEW readings (id, ts_ms, series, value, quality, note, flags) AS
    SELECT l.id, i.ts_ms, i.series, l.value, l.quality, l.note, l.flags
    FROM readings_by_series i JOIN readings_log l ON l.id = i.id
    UNION ALL
    SELECT id, ts_ms, series, value, quality, note, flags FROM readings_log
    WHERE id > (SELECT value FROM rollup_state WHERE name = 'raw');
    CREATE TRIGGER readings_insert INSTEAD OF INSERT ON readings BEGIN
        INSERT INTO readings_log (id, ts_ms, series, value, quality, note, flags)
        VALUES (NEW.id, NEW.ts_ms, NEW.series, NEW.value, COALESCE(NEW.quality, 0), NEW.note, NEW.flags);
    END;
    CREATE TRIGGER readings_delete INSTEAD OF DELETE ON readings BEGIN
        DELETE FROM readings_by_series WHERE series = OLD.series AND ts_ms = OLD.ts_ms AND id = OLD.id;
        DELETE FROM readings_log WHERE id = OLD.id;
    END;
    """,
    # version 10: precooling runs (预冷, daemon/lots/precool.py): one open run per precooling room at most, the lot it
    # cools (if any), how it began and ended, the commodity's target, and the figures at its end (JSON)
    """
    CREATE TABLE precool_runs (
        id INTEGER PRIMARY KEY, zone TEXT NOT NULL, lot TEXT REFERENCES lots(code), commodity TEXT,
        started REAL NOT NULL, started_by TEXT NOT NULL, how TEXT NOT NULL, target_s REAL,
        ended REAL, ended_by TEXT, end_reason TEXT, figures TEXT
    );
    CREATE UNIQUE INDEX precool_runs_open ON precool_runs (zone) WHERE ended IS NULL;
    CREATE INDEX precool_runs_lot ON precool_runs (lot, started);
    """,
    # version 11 (epcis): lot events for EPCIS 2.0 (daemon/lots/epcis.py) and the uplink, one row per lot change in
    # the change's transaction, in the order they happened; lots shipped to / received from another site, split
    # and merged codes (their parents), and a reefer logger's readings attached to a lot in transit. Lots already
    # in the journal get their events back-filled from their stays, so an export covers them too.
    """
    ALTER TABLE lots ADD COLUMN destination TEXT;
    ALTER TABLE lots ADD COLUMN source TEXT;
    ALTER TABLE lots ADD COLUMN parents TEXT;
    CREATE TABLE lot_events (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, lot TEXT NOT NULL, zone TEXT,
        ended_zone TEXT, ended_start REAL, peer TEXT, inputs TEXT, outputs TEXT,
        who TEXT NOT NULL, recorded REAL NOT NULL
    );
    CREATE INDEX lot_events_lot ON lot_events (lot, id);
    CREATE INDEX lot_events_ts ON lot_events (ts);
    INSERT INTO lot_events (ts, kind, lot, zone, ended_zone, ended_start, who, recorded)
    SELECT ts, kind, lot, zone, ended_zone, ended_start, who, ts FROM (
        SELECT s.start AS ts, CASE WHEN p.id IS NULL THEN 'commission' ELSE 'move' END AS kind, s.lot AS lot,
               s.zone AS zone, p.zone AS ended_zone, p.start AS ended_start, s.who_in AS who, s.id AS k
        FROM lot_stays s LEFT JOIN lot_stays p ON p.lot = s.lot AND p.end = s.start AND p.id <> s.id
        UNION ALL
        SELECT l.checked_out, 'check_out', l.code, NULL, s.zone, s.start, COALESCE(s.who_out, l.created_by), s.id
        FROM lots l JOIN lot_stays s ON s.lot = l.code AND s.end = l.checked_out
        WHERE l.checked_out IS NOT NULL
    ) ORDER BY ts, k;
    CREATE TABLE transit_logs (
        id INTEGER PRIMARY KEY, lot TEXT NOT NULL REFERENCES lots(code), logger TEXT NOT NULL,
        source TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, readings TEXT NOT NULL,
        imported REAL NOT NULL, who TEXT NOT NULL
    );
    CREATE INDEX transit_logs_lot ON transit_logs (lot, start);
    """,
    # version 12 (issue #15, sign-in): people who sign in to the pages, and their sessions. A password is kept
    # only as its argon2id hash; a session only as the SHA-256 of its cookie, so a copy of the journal lets no
    # one in. `failed` counts the failures since `failed_since` (the lock-out window); sessions end with their
    # user (ON DELETE CASCADE) and are deleted on a password change (sign-out everywhere)
    """
    CREATE TABLE users (
        username TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
        created REAL NOT NULL, changed REAL NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0, failed_since REAL, locked_until REAL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
        csrf TEXT NOT NULL, created REAL NOT NULL, last_seen REAL NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (username);
    """,
    # version 13 (region): each lot event keeps its EPCIS eventID (`uid`, a random UUID given when the event is
    # written), so a journal restored from an older backup cannot reuse ids the hub has already seen (it would
    # drop the new events as duplicates). Rows written before get their old uuid5(site, id) at the first start
    # (`Lots.__init__`: the site is in the config, not the journal), so ids already sent stay the same. Alarms
    # likewise: the hub keys alarm changes by (site, id, state), so each alarm keeps the id it is sent under;
    # alarms from before keep their journal id (the id they were sent as)
    """
    ALTER TABLE lot_events ADD COLUMN uid TEXT;
    CREATE UNIQUE INDEX lot_events_uid ON lot_events (uid);
    ALTER TABLE alerts ADD COLUMN uid TEXT;
    UPDATE alerts SET uid = CAST(id AS TEXT);
    CREATE UNIQUE INDEX alerts_uid ON alerts (uid);
    """,
    # version 14: raw readings in partitions of about a day that retention drops whole (daemon/storage/partitions.py):
    # in WAL mode a DELETE writes every page it touches, freed or not, and that was a quarter of the SD card's writes
    partitions.MIGRATION,
]
