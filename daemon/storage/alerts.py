"""Alarms and their audit trail: the `alerts` and `alert_events` tables.

An alarm row carries its state (pending, firing, acknowledged, resolved, cancelled) and its
escalation timer (`esc_step`, `esc_next`), so a restart resumes escalation where it stopped.
The writes take the caller's transaction (`Tx`): the alarm lifecycle (`daemon/alarms/lifecycle.py`)
stores a transition, its audit entry and its outbox rows in one, before any message is sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from daemon.ports.sinks import AlarmEvent
from daemon.storage.db import Database, Tx, and_equal

OPEN_STATES = "('pending', 'firing', 'acknowledged')"
COLUMNS = (  # of AlertRow, in its order
    "id, key, zone, sensor, kind, severity, state, started, fired, acked, acked_by, resolved, "
    "value, limit_value, peak, detail, closed, closed_by, ack_value, reescalated"
)


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
    closed: float | None = None  # a manager closed it (HACCP review), after its corrective actions
    closed_by: str | None = None
    ack_value: float | None = None  # the value when it was acknowledged, for re-escalation
    reescalated: float | None = None  # when an acknowledged alarm that kept going was paged again


@dataclass(frozen=True, slots=True)
class CorrectiveAction:
    """What was done to the product after an alarm: `kind` moved / discarded / kept_after_check / other."""

    id: int
    alert_id: int
    ts: float
    who: str
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class NewAlert:
    """What an alarm starts with (a rule event's fields)."""

    key: str
    zone: str
    sensor: str | None
    kind: str
    severity: str
    started: float
    value: float | None
    limit: float | None
    peak: float | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Escalation:
    """An alarm's escalation timer as stored."""

    state: str
    step: int
    due: float | None
    fired: float | None


class Alerts:
    """The `alerts` and `alert_events` tables: reads on this thread's reader, writes in the caller's `Tx`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- reads

    def find(self, *, open_only: bool = False, zone: str | None = None, limit: int = 500) -> list[AlertRow]:
        sql = f"SELECT {COLUMNS} FROM alerts WHERE 1=1" + (f" AND state IN {OPEN_STATES}" if open_only else "")
        sql, args = and_equal(sql, {"zone": zone})
        return [AlertRow(*row) for row in self._db.read(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])]

    def get(self, alert_id: int) -> AlertRow | None:
        row = self._db.one(f"SELECT {COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return AlertRow(*row) if row else None

    def due_escalations(self, now: float) -> list[int]:
        rows = self._db.read(
            "SELECT id FROM alerts WHERE state='firing' AND esc_next IS NOT NULL AND esc_next <= ? ORDER BY id", (now,)
        )
        return [int(r[0]) for r in rows]

    def count_by_state(self) -> list[tuple[str, int]]:
        return [(str(s), int(n)) for s, n in self._db.read("SELECT state, COUNT(*) FROM alerts GROUP BY state")]

    def events(self, alert_id: int) -> list[tuple[float, str, str, str | None]]:
        """(ts, state, who, comment) of one alarm's audit entries, oldest first."""
        return [
            (r[0], r[1], r[2], r[3])
            for r in self._db.read("SELECT ts, state, who, comment FROM alert_events WHERE alert_id = ? ORDER BY id",
                                   (alert_id,))
        ]

    def events_after(self, last_id: int, limit: int, site: str) -> list[AlarmEvent]:
        """Audit-log entries with id > last_id, each with its alarm's place and kind, for sinks."""
        rows = self._db.read(
            "SELECT e.id, e.alert_id, e.ts, e.state, e.who, e.comment, a.zone, a.sensor, a.kind, a.severity, "
            "a.value, a.limit_value, a.uid FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "WHERE e.id > ? ORDER BY e.id LIMIT ?",
            (last_id, limit),
        )
        return [AlarmEvent(r[0], r[1], r[2], r[3], r[4], r[5], site, r[6], r[7], r[8], r[9], r[10], r[11], uid=r[12])
                for r in rows]

    def actions(self, alert_id: int) -> list[CorrectiveAction]:
        """The corrective actions recorded for one alarm, oldest first."""
        return [CorrectiveAction(*r) for r in self._db.read(
            "SELECT id, alert_id, ts, who, kind, text FROM corrective_actions WHERE alert_id = ? ORDER BY id",
            (alert_id,))]

    def acknowledged_open(self) -> list[AlertRow]:
        """Acknowledged alarms still out of range, for `AlertManager.reescalate`."""
        sql = f"SELECT {COLUMNS} FROM alerts WHERE state = 'acknowledged' ORDER BY id"
        return [AlertRow(*r) for r in self._db.read(sql)]

    def max_event_id(self) -> int:
        row = self._db.one("SELECT COALESCE(MAX(id), 0) FROM alert_events")
        return int(row[0]) if row else 0

    # -- inside the caller's transaction

    @staticmethod
    def load(tx: Tx, alert_id: int) -> AlertRow:
        return AlertRow(*tx.execute(f"SELECT {COLUMNS} FROM alerts WHERE id=?", (alert_id,)).fetchone())

    @staticmethod
    def open_by_key(tx: Tx, key: str) -> AlertRow | None:
        row = tx.execute(
            f"SELECT {COLUMNS} FROM alerts WHERE key = ? AND state IN ('pending','firing','acknowledged')", (key,)
        ).fetchone()
        return AlertRow(*row) if row else None

    @staticmethod
    def state(tx: Tx, alert_id: int) -> str | None:
        row = tx.execute("SELECT state FROM alerts WHERE id=?", (alert_id,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def escalation(tx: Tx, alert_id: int) -> Escalation | None:
        r = tx.execute("SELECT state, esc_step, esc_next, fired FROM alerts WHERE id=?", (alert_id,)).fetchone()
        return None if r is None else Escalation(r[0], int(r[1] or 0), r[2], r[3])

    @staticmethod
    def insert(tx: Tx, new: NewAlert, state: str) -> int:
        cur = tx.execute(
            "INSERT INTO alerts (key, zone, sensor, kind, severity, state, started, value, limit_value, peak, detail,"
            " uid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (new.key, new.zone, new.sensor, new.kind, new.severity, state, new.started, new.value, new.limit,
             new.peak, new.detail, str(uuid.uuid4())),
        )
        return int(cur.lastrowid or 0)

    @staticmethod
    def cancel(tx: Tx, alert_id: int, ts: float, peak: float | None) -> None:
        tx.execute("UPDATE alerts SET state='cancelled', resolved=?, peak=? WHERE id=?", (ts, peak, alert_id))

    @staticmethod
    def fire(tx: Tx, alert_id: int, ts: float, value: float | None, peak: float | None, detail: str | None,
             esc_next: float | None) -> None:
        """Firing from step 0 of the escalation chain, its next step due at `esc_next`."""
        tx.execute(
            "UPDATE alerts SET state='firing', fired=?, value=?, peak=?, detail=?, esc_step=0, esc_next=? WHERE id=?",
            (ts, value, peak, detail, esc_next, alert_id),
        )

    @staticmethod
    def resolve(tx: Tx, alert_id: int, ts: float, peak: float | None, value: float | None) -> None:
        tx.execute(
            "UPDATE alerts SET state='resolved', resolved=?, peak=COALESCE(?, peak), value=?, esc_next=NULL WHERE id=?",
            (ts, peak, value, alert_id),
        )

    @staticmethod
    def set_peak(tx: Tx, alert_id: int, peak: float | None) -> None:
        """The open alarm's peak so far (between transitions, rate-limited by the rules)."""
        tx.execute("UPDATE alerts SET peak=? WHERE id=?", (peak, alert_id))

    @staticmethod
    def acknowledge(tx: Tx, alert_id: int, at: float, who: str, value: float | None = None) -> None:
        """Acknowledged by `who`: escalation stops; the value then (else the firing value) is kept to tell a room
        that keeps warming."""
        tx.execute("UPDATE alerts SET state='acknowledged', acked=?, acked_by=?, esc_next=NULL, "
                   "ack_value=COALESCE(?, value) WHERE id=?", (at, who, value, alert_id))

    @staticmethod
    def reescalate(tx: Tx, alert_id: int, at: float, esc_next: float | None) -> None:
        """An acknowledged alarm that kept going is firing again, its chain restarted from step 0."""
        tx.execute("UPDATE alerts SET state='firing', reescalated=?, esc_step=0, esc_next=? WHERE id=?",
                   (at, esc_next, alert_id))

    @staticmethod
    def add_action(tx: Tx, alert_id: int, ts: float, who: str, kind: str, text: str) -> int:
        cur = tx.execute("INSERT INTO corrective_actions (alert_id, ts, who, kind, text) VALUES (?,?,?,?,?)",
                         (alert_id, ts, who, kind, text))
        return int(cur.lastrowid or 0)

    @staticmethod
    def count_actions(tx: Tx, alert_id: int) -> int:
        return int(tx.execute("SELECT COUNT(*) FROM corrective_actions WHERE alert_id=?", (alert_id,)).fetchone()[0])

    @staticmethod
    def close(tx: Tx, alert_id: int, at: float, who: str) -> None:
        tx.execute("UPDATE alerts SET closed=?, closed_by=? WHERE id=?", (at, who, alert_id))

    @staticmethod
    def set_escalation(tx: Tx, alert_id: int, step: int, due: float | None) -> None:
        tx.execute("UPDATE alerts SET esc_step=?, esc_next=? WHERE id=?", (step, due, alert_id))

    @staticmethod
    def add_event(tx: Tx, alert_id: int, ts: float, state: str, comment: str | None = None,
                  who: str = "system") -> None:
        """One audit entry of an alarm (firing, escalated, acknowledged ...)."""
        tx.execute("INSERT INTO alert_events (alert_id, ts, state, who, comment) VALUES (?,?,?,?,?)",
                   (alert_id, ts, state, who, comment))

    @staticmethod
    def shift_timers(tx: Tx, step: float) -> None:
        """Escalation times of open alarms move with a wall-clock step."""
        tx.execute("UPDATE alerts SET esc_next = esc_next + ? WHERE esc_next IS NOT NULL "
                   "AND state IN ('pending', 'firing')", (step,))
