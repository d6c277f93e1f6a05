"""Alert lifecycle: persist each rule event with its audit entry and outgoing messages
in one transaction, then deliver the outbox through the notifiers.

States: pending -> firing -> acknowledged -> resolved (or pending -> cancelled when the
value came back before the delay ended). Messages are stored before they are sent, so
a restart neither forgets nor repeats them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daemon.clock import Clock
from daemon.config import AppConfig, ContactConfig
from daemon.errors import NotifierError
from daemon.journal import AlertRow, Journal
from daemon.messages import render
from daemon.notify import Message, Notifier
from daemon.rules import RuleEvent
from daemon.stats import Stats

log = logging.getLogger("coldchain.alerts")

TEXT_KEY = {
    "temp_high": "alert.temp_high",
    "temp_low": "alert.temp_low",
    "freeze": "alert.freeze",
    "rh_high": "alert.rh_high",
    "rh_low": "alert.rh_low",
    "no_data": "alert.no_data",
    "sensor_fault": "alert.sensor_fault",
}


@dataclass(frozen=True, slots=True)
class Recipient:
    contact: str
    address: str
    notifier: str
    lang: str


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_detail(detail: str, lang: str) -> str:
    """Details are stored as `key|name=value|...` so they can be shown in any language."""
    if not detail:
        return ""
    key, *params = detail.split("|")
    kw = dict(p.split("=", 1) for p in params if "=" in p)
    try:
        return render(key, lang, **kw)
    except KeyError:
        return detail


class AlertManager:
    """Turns rule events into stored alarms, audit entries and outbox messages."""

    def __init__(self, cfg: AppConfig, journal: Journal, clock: Clock, stats: Stats) -> None:
        self.cfg = cfg
        self.journal = journal
        self.clock = clock
        self.stats = stats
        self.listeners: list[Callable[[str, AlertRow, list[str]], None]] = []
        self.outbox_ready = asyncio.Event()

    # -- who is told

    def _lang(self, c: ContactConfig | None) -> str:
        return (c.language if c and c.language else None) or self.cfg.site.language

    def first_recipients(self) -> list[Recipient]:
        """Step 0 of the escalation chain (the staff on duty)."""
        contacts = {c.id: c for c in self.cfg.contacts}
        notifiers = [n.id for n in self.cfg.notifiers]
        if self.cfg.escalation.steps:
            step = self.cfg.escalation.steps[0]
            chosen = [contacts[c] for c in step.contacts]
            channel = (step.notifiers or notifiers or ["log"])[0]
        else:
            chosen = list(contacts.values())
            channel = (notifiers or ["log"])[0]
        if not chosen:
            return [Recipient("log", "-", channel, self.cfg.site.language)]
        return [Recipient(c.id, c.phone or c.id, channel, self._lang(c)) for c in chosen]

    # -- texts

    def text(self, row: AlertRow, lang: str, resolved: bool = False) -> str:
        zone = self.cfg.zone(row.zone)
        com = self.cfg.commodity(row.zone)
        minutes = round(((row.resolved or row.fired or self.clock.now()) - row.started) / 60)
        params: dict[str, object] = {
            "site": self.cfg.site.name,
            "zone": zone.display_name(lang),
            "commodity": com.name(lang) if com else "",
            "value": _fmt(row.value),
            "limit": _fmt(row.limit_value),
            "minutes": max(minutes, 0),
            "id": row.id,
            "sensor": row.sensor or "",
            "detail": render_detail(row.detail or "", lang),
        }
        if resolved:
            params["what"] = render(f"kind.{row.kind}", lang)
            return render("resolve", lang, **params)
        return render(TEXT_KEY[row.kind], lang, **params)

    # -- persistence

    def apply(self, events: Sequence[RuleEvent]) -> list[tuple[str, AlertRow]]:
        """Persist events (blocking; call from a thread). Returns (action, row) for each change."""
        changes: list[tuple[str, AlertRow]] = []
        for ev in events:
            try:
                row = self._apply_one(ev)
            except sqlite3.Error:
                log.exception("could not store alarm event %s %s", ev.action, ev.key)
                self.stats.inc("alarm_store_errors")
                continue
            if row is not None:
                changes.append((ev.action, row))
        for action, row in changes:
            texts = [o.text for o in self.journal.outbox(limit=1000) if o.alert_id == row.id] if action in (
                "fire", "clear") else []
            for fn in self.listeners:
                fn(action, row, texts)
        if any(a in ("fire", "clear") for a, _ in changes):
            self.outbox_ready.set()
        return changes

    def _open(self, db: sqlite3.Connection, key: str) -> AlertRow | None:
        row = db.execute(
            f"SELECT {Journal._ALERT_COLS} FROM alerts WHERE key = ? AND state IN ('pending','firing','acknowledged')",
            (key,),
        ).fetchone()
        return AlertRow(*row) if row else None

    def _apply_one(self, ev: RuleEvent) -> AlertRow | None:
        j = self.journal
        with j.transaction() as db:
            cur = self._open(db, ev.key)
            if ev.action == "pending":
                if cur is not None:
                    return None
                aid = self._insert(db, ev, "pending")
                self._audit(db, aid, ev.ts, "pending")
            elif ev.action == "cancel":
                if cur is None or cur.state != "pending":
                    return None
                aid = cur.id
                db.execute("UPDATE alerts SET state='cancelled', resolved=?, peak=? WHERE id=?", (ev.ts, ev.peak, aid))
                self._audit(db, aid, ev.ts, "cancelled", "back in range before the delay ended")
            elif ev.action == "fire":
                if cur is not None and cur.state != "pending":
                    return None
                aid = self._insert(db, ev, "firing") if cur is None else cur.id
                db.execute(
                    "UPDATE alerts SET state='firing', fired=?, value=?, peak=?, detail=? WHERE id=?",
                    (ev.ts, ev.value, ev.peak, ev.detail or None, aid),
                )
                self._audit(db, aid, ev.ts, "firing")
                row = AlertRow(*db.execute(f"SELECT {Journal._ALERT_COLS} FROM alerts WHERE id=?", (aid,)).fetchone())
                for rc in self.first_recipients():
                    self._enqueue(db, row, rc, self.text(row, rc.lang))
                self.stats.inc("alarms_fired")
            else:  # clear
                if cur is None:
                    return None
                aid = cur.id
                db.execute(
                    "UPDATE alerts SET state='resolved', resolved=?, peak=COALESCE(?, peak), value=? WHERE id=?",
                    (ev.ts, ev.peak, ev.value, aid),
                )
                self._audit(db, aid, ev.ts, "resolved")
                row = AlertRow(*db.execute(f"SELECT {Journal._ALERT_COLS} FROM alerts WHERE id=?", (aid,)).fetchone())
                told = db.execute(
                    "SELECT DISTINCT contact, address, notifier, lang FROM outbox WHERE alert_id=?", (aid,)
                ).fetchall()
                for contact, address, notifier, lang in told:
                    self._enqueue(db, row, Recipient(contact, address, notifier, lang), self.text(row, lang, True))
                self.stats.inc("alarms_resolved")
            return AlertRow(*db.execute(f"SELECT {Journal._ALERT_COLS} FROM alerts WHERE id=?", (aid,)).fetchone())

    @staticmethod
    def _insert(db: sqlite3.Connection, ev: RuleEvent, state: str) -> int:
        cur = db.execute(
            "INSERT INTO alerts (key, zone, sensor, kind, severity, state, started, value, limit_value, peak, detail)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (ev.key, ev.zone, ev.sensor, ev.kind, ev.severity, state, ev.started, ev.value, ev.limit, ev.peak,
             ev.detail or None),
        )
        return int(cur.lastrowid or 0)

    @staticmethod
    def _audit(db: sqlite3.Connection, aid: int, ts: float, state: str, comment: str | None = None,
               who: str = "system") -> None:
        db.execute("INSERT INTO alert_events (alert_id, ts, state, who, comment) VALUES (?,?,?,?,?)",
                   (aid, ts, state, who, comment))

    def _enqueue(self, db: sqlite3.Connection, row: AlertRow, rc: Recipient, text: str) -> None:
        db.execute(
            "INSERT INTO outbox (alert_id, created, contact, address, notifier, lang, text) VALUES (?,?,?,?,?,?,?)",
            (row.id, self.clock.now(), rc.contact, rc.address, rc.notifier, rc.lang, text),
        )

    def acknowledge(self, alert_id: int, who: str, comment: str | None) -> AlertRow | None:
        """Mark a firing alarm acknowledged (blocking). None when there is nothing to acknowledge."""
        with self.journal.transaction() as db:
            row = db.execute("SELECT state FROM alerts WHERE id=?", (alert_id,)).fetchone()
            if row is None or row[0] not in ("firing", "pending"):
                return None
            now = self.clock.now()
            db.execute("UPDATE alerts SET state='acknowledged', acked=?, acked_by=? WHERE id=?", (now, who, alert_id))
            self._audit(db, alert_id, now, "acknowledged", comment, who)
        return self.journal.alert(alert_id)

    def open_tracks(self) -> list[tuple[str, str, float, float | None]]:
        """(key, state, started, peak) of every open alarm, for `Rules.restore`."""
        return [(a.key, a.state, a.started, a.peak) for a in self.journal.alerts(open_only=True, limit=100_000)]


class Dispatcher:
    """Sends what the outbox holds, oldest first; a failed send stays pending and is retried."""

    def __init__(self, journal: Journal, notifiers: dict[str, Notifier], stats: Stats, ready: asyncio.Event,
                 retry_after: float = 30.0, max_attempts: int = 10) -> None:
        self.journal = journal
        self.notifiers = notifiers
        self.stats = stats
        self.ready = ready
        self.retry_after = retry_after
        self.max_attempts = max_attempts

    async def run(self) -> None:
        while True:
            await self.drain()
            self.ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), timeout=self.retry_after)

    async def drain(self) -> int:
        sent = 0
        rows = await asyncio.to_thread(self.journal.outbox, state="pending")
        for row in rows:
            notifier = self.notifiers.get(row.notifier)
            if notifier is None:
                log.error("outbox %d: notifier %r is not configured; message kept pending", row.id, row.notifier)
                continue
            msg = Message(row.id, row.alert_id, row.contact, row.address, row.text, row.lang)
            try:
                ref = await notifier.send(msg)
            except NotifierError as exc:
                final = row.attempts + 1 >= self.max_attempts
                log.warning("outbox %d to %s via %s failed (attempt %d): %s", row.id, row.contact, notifier.source,
                            row.attempts + 1, exc)
                self.stats.inc("messages_failed")
                await asyncio.to_thread(self.journal.mark_outbox, row.id, state="failed" if final else "pending",
                                        error=str(exc))
                continue
            await asyncio.to_thread(self.journal.mark_outbox, row.id, state="sent", ref=ref)
            self.stats.inc("messages_sent")
            sent += 1
        return sent
