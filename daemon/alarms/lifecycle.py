"""Alert lifecycle: rule events become stored alarms, and their state transitions.

States: pending -> firing -> acknowledged -> resolved (or pending -> cancelled when the
value came back before the delay ended). Each transition is stored with its audit entry
and the messages it causes in ONE transaction, before any message is sent; escalation
timers live in the alert row, so a restart resumes them and sends nothing twice.

Who is paged when: `escalation.py`; what the messages say: `texts.py`; reading SMS replies:
`replies.py`; delivering the outbox: `dispatcher.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence

from daemon.alarms import followup
from daemon.alarms.escalation import Escalation, Recipient
from daemon.alarms.replies import parse_reply, phone_key
from daemon.alarms.rules import DEVICE_KINDS, RuleEvent
from daemon.alarms.texts import TEXT_KEY, AlarmTexts
from daemon.config.schema import AppConfig
from daemon.messages import render
from daemon.ports.clock import Clock
from daemon.ports.errors import StorageError
from daemon.ports.notify import Incoming
from daemon.ports.stats import Stats
from daemon.storage.alerts import AlertRow, NewAlert
from daemon.storage.db import Tx
from daemon.storage.journal import Journal

log = logging.getLogger("coldchain.alerts")


class AlertManager:
    """Turns rule events into stored alarms, audit entries and outbox messages."""

    def __init__(self, cfg: AppConfig, journal: Journal, clock: Clock, stats: Stats) -> None:
        self.cfg = cfg
        self.journal = journal
        self.clock = clock
        self.stats = stats
        self.listeners: list[Callable[[str, AlertRow, list[str]], None]] = []
        self.outbox_ready = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None  # the dispatcher's loop, set by the daemon at start
        self.escalation = Escalation(cfg)
        self.texts = AlarmTexts(cfg, clock)

    def wake_dispatcher(self) -> None:
        """Tell the dispatcher there is mail. apply(), escalate() and the others run in worker threads, and
        asyncio.Event.set() from another thread does not wake a sleeping loop: the dispatcher then waited
        for the next unrelated wake-up (the pipeline's flush timer), ~200 ms of alarm latency."""
        loop = self.loop
        if loop is None or loop.is_closed():
            self.outbox_ready.set()
            return
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here:
            self.outbox_ready.set()
        else:
            loop.call_soon_threadsafe(self.outbox_ready.set)

    # -- persistence of rule events

    def apply(self, events: Sequence[RuleEvent]) -> list[tuple[str, AlertRow]]:
        """Persist events (blocking; call from a thread). Returns (action, row) for each change.

        An event the journal refuses (disk full) does not stop the others; once they are stored and announced,
        the first refusal is raised, so the caller knows the rules are ahead of the journal (`Rules.forget`)."""
        changes: list[tuple[str, AlertRow]] = []
        refused: StorageError | None = None
        for ev in events:
            try:
                row = self._apply_one(ev)
            except StorageError as exc:
                log.error("could not store alarm event %s %s: %s", ev.action, ev.key, exc)
                self.stats.inc("alarm_store_errors")
                refused = refused or exc
                continue
            if row is not None:
                changes.append((ev.action, row))
        self._announce(changes)
        if refused is not None:
            raise refused
        return changes

    def _announce(self, changes: list[tuple[str, AlertRow]]) -> None:
        for action, row in changes:
            texts = [o.text for o in self.journal.outbox.find(alert_id=row.id)] if action in ("fire", "clear") else []
            for fn in self.listeners:
                try:
                    fn(action, row, texts)
                except Exception:
                    log.exception("alert listener failed")
        if changes:
            self.wake_dispatcher()

    def _apply_one(self, ev: RuleEvent) -> AlertRow | None:
        alerts = self.journal.alerts
        with self.journal.transaction() as tx:
            cur = alerts.open_by_key(tx, ev.key)
            if ev.action == "peak":  # not a transition: no audit entry, nothing to announce
                if cur is not None:
                    alerts.set_peak(tx, cur.id, ev.peak)
                return None
            if ev.action == "pending":
                if cur is not None:
                    return None
                aid = self._insert(tx, ev, "pending")
                alerts.add_event(tx, aid, ev.ts, "pending")
            elif ev.action == "cancel":
                if cur is None or cur.state != "pending":
                    return None
                aid = cur.id
                alerts.cancel(tx, aid, ev.ts, ev.peak)
                alerts.add_event(tx, aid, ev.ts, "cancelled", ev.detail or "back in range before the delay ended")
            elif ev.action == "fire":
                if cur is not None and cur.state != "pending":
                    return None
                aid = self._insert(tx, ev, "firing") if cur is None else cur.id
                now = self.clock.now()
                device = ev.kind in DEVICE_KINDS  # the installer's, told once
                alerts.fire(tx, aid, ev.ts, ev.value, ev.peak, ev.detail or None,
                            None if device else self.escalation.next_due(ev.ts, 0, now))
                alerts.add_event(tx, aid, ev.ts, "firing")
                row = alerts.load(tx, aid)
                for rc in self.escalation.device_recipients() if device else self.escalation.recipients(0):
                    self._enqueue(tx, row, rc, TEXT_KEY[row.kind], self.texts.params(row, rc.lang))
                self.stats.inc("alarms_fired")
            else:  # clear
                if cur is None:
                    return None
                aid = cur.id
                alerts.resolve(tx, aid, ev.ts, ev.peak, ev.value)
                alerts.add_event(tx, aid, ev.ts, "resolved", ev.detail or None)
                if cur.state != "pending":
                    self._tell_everyone_told(tx, alerts.load(tx, aid), "resolve")
                self.stats.inc("alarms_resolved")
            return alerts.load(tx, aid)

    def _insert(self, tx: Tx, ev: RuleEvent, state: str) -> int:
        return self.journal.alerts.insert(tx, NewAlert(ev.key, ev.zone, ev.sensor, ev.kind, ev.severity, ev.started,
                                                       ev.value, ev.limit, ev.peak, ev.detail or None), state)

    def _tell_everyone_told(self, tx: Tx, row: AlertRow, key: str, *, skip: str | None = None,
                            **extra: object) -> None:
        for contact, address, notifier, lang, fallbacks in self.journal.outbox.told(tx, row.id):
            if contact == skip:
                continue
            rc = Recipient(contact, address, notifier, lang, tuple(filter(None, (fallbacks or "").split(","))))
            self._enqueue(tx, row, rc, key, self.texts.params(row, lang, **extra))

    def _enqueue(self, tx: Tx, row: AlertRow | None, rc: Recipient, key: str, params: dict[str, str]) -> None:
        text = render(key, rc.lang, **params)
        self.journal.outbox.enqueue(tx, row.id if row else None, self.clock.now(), rc.contact, rc.address, rc.notifier,
                                    rc.lang, text, ",".join(rc.fallbacks) or None, key,
                                    json.dumps(params, ensure_ascii=False))

    # -- escalation

    def escalate(self) -> list[AlertRow]:
        """Advance every firing, unacknowledged alarm whose next step is due (blocking)."""
        alerts = self.journal.alerts
        now = self.clock.now()
        out = []
        for aid in alerts.due_escalations(now):
            with self.journal.transaction() as tx:
                esc = alerts.escalation(tx, aid)
                if esc is None or esc.state != "firing" or esc.due is None or esc.due > now:
                    continue
                step = esc.step
                nxt = self.escalation.next_step(step)  # past the last step: repeat it
                row = alerts.load(tx, aid)
                for rc in self.escalation.recipients(nxt):
                    self._enqueue(tx, row, rc, TEXT_KEY[row.kind], self.texts.params(row, rc.lang))
                alerts.set_escalation(tx, aid, nxt, self.escalation.next_due(float(esc.fired or now), nxt, now))
                alerts.add_event(tx, aid, now, "escalated", f"step {nxt}" if nxt != step else f"repeat step {nxt}")
                out.append(row)
                self.stats.inc("escalations")
        out += self.reescalate(now)
        if out:
            self.wake_dispatcher()
        return out

    def current_value(self, row: AlertRow) -> float | None:
        """The newest good value of the alarm's quantity at its sensor (the worst of the zone's without one)."""
        quantity = followup.quantity_of(row.kind)
        if quantity is None or row.zone not in {z.id for z in self.cfg.zones}:
            return None
        recent = self.journal.readings.query(zone=row.zone, sensor=row.sensor, quantity=quantity,
                                             newest_first=True, limit=20)
        newest: dict[str, float] = {}
        for r in recent:
            if r.good and r.value is not None:
                newest.setdefault(r.sensor, r.value)
        if not newest:
            return None
        return max(newest.values(), key=lambda v: followup.worse_by(row.kind, 0.0, v) or 0.0)

    def reescalate(self, now: float) -> list[AlertRow]:
        """Page again, from step 0, for each acknowledged alarm that keeps going (`followup.reescalation_reason`);
        it is firing again until someone acknowledges it anew."""
        out = []
        for row in self.journal.alerts.acknowledged_open():
            if row.kind in DEVICE_KINDS:  # a battery the installer knows of is changed on the next visit
                continue
            current = self.current_value(row)
            reason = followup.reescalation_reason(self.cfg.alarms, row, now, current)
            if reason is None:
                continue
            alerts = self.journal.alerts
            with self.journal.transaction() as tx:
                if alerts.state(tx, row.id) != "acknowledged":
                    continue
                alerts.reescalate(tx, row.id, now, self.escalation.next_due(now, 0, now))
                alerts.add_event(tx, row.id, now, "reescalated", reason)
                fresh = alerts.load(tx, row.id)
                since = str(round((now - (row.acked or now)) / 60))
                for rc in self.escalation.recipients(0):
                    params = self.texts.params(fresh, rc.lang, since=since)
                    params["value"] = "-" if current is None else f"{current:.1f}"
                    self._enqueue(tx, fresh, rc, "alert.reescalated", params)
            out.append(fresh)
            self.stats.inc("alarms_reescalated")
        return out

    # -- acknowledgement and what follows it (corrective action, close: `followup.py`)

    def acknowledge(self, alert_id: int, who: str, comment: str | None, via: str = "web") -> AlertRow | None:
        """Acknowledge a pending or firing alarm (blocking); stops escalation. None if nothing to do.

        Raises `followup.CommentRequired` without a comment when `alarms.ack_comment_required` (an SMS reply's
        comment is its text, so an SMS `ACK 4` always has one)."""
        alerts = self.journal.alerts
        current = alerts.get(alert_id)
        value = self.current_value(current) if current is not None else None
        with self.journal.transaction() as tx:
            if alerts.state(tx, alert_id) not in ("firing", "pending"):
                return None
            if self.cfg.alarms.ack_comment_required and not (comment or "").strip():
                raise followup.CommentRequired("an acknowledgement needs a comment: what is being done")
            now = self.clock.now()
            alerts.acknowledge(tx, alert_id, now, who, value)
            alerts.add_event(tx, alert_id, now, "acknowledged", comment, f"{who} ({via})")
            if self.cfg.escalation.notify_ack:
                self._tell_everyone_told(tx, alerts.load(tx, alert_id), "ack.notice", skip=who, who=who)
        self.stats.inc("alarms_acknowledged")
        self.wake_dispatcher()
        return alerts.get(alert_id)

    def record_action(self, alert_id: int, who: str, kind: str, text: str) -> AlertRow:
        """A corrective action (blocking); raises `followup.WorkflowError` when it cannot be recorded now."""
        row = followup.record_action(self.journal, self.clock.now(), alert_id, who, kind, text)
        self.stats.inc("corrective_actions")
        return row

    def close(self, alert_id: int, who: str, comment: str | None) -> AlertRow:
        """A manager's close (blocking); raises `followup.WorkflowError` when it cannot be closed now."""
        row = followup.close(self.journal, self.clock.now(), alert_id, who, comment)
        self.stats.inc("alarms_closed")
        return row

    def handle_incoming(self, msg: Incoming) -> str:
        """An SMS reply: `ACK 17`, `确认17`, `收到` or `1` acknowledges (blocking). Returns the outcome."""
        sender = phone_key(msg.sender)
        contact = next((c for c in self.cfg.contacts if c.phone and phone_key(c.phone) == sender), None)
        reply = parse_reply(msg.text)
        wanted, is_ack = reply.alert_id, reply.is_ack
        alert_id: int | None = None
        if contact is None:
            outcome = "unknown sender"
        elif not is_ack:
            outcome = "not an acknowledgement"
        else:
            told = self.journal.outbox.alerts_told(sender_key=sender, phone_key=phone_key)
            if wanted is not None and wanted in told:
                alert_id = wanted
            elif wanted is None:
                open_told = [a for a in told if (r := self.journal.alerts.get(a)) and r.state in ("firing", "pending")]
                alert_id = max(open_told) if open_told else None
            outcome = "no matching alarm" if alert_id is None else "acknowledged"
            if alert_id is not None and self.acknowledge(alert_id, contact.id, reply.comment or msg.text.strip(),
                                                         via=f"SMS {msg.sender}") is None:
                outcome = "already acknowledged or resolved"
        with self.journal.transaction() as tx:
            self.journal.outbox.record_incoming(tx, msg.ts, msg.channel, msg.sender, msg.text, alert_id, outcome)
            if contact is not None and is_ack and self.cfg.escalation.reply_to_ack:
                rc = Recipient(contact.id, msg.sender, msg.channel, self.escalation.lang(contact))
                if outcome == "acknowledged" and alert_id is not None:
                    row = self.journal.alerts.load(tx, alert_id)
                    self._enqueue(tx, row, rc, "ack.reply", self.texts.params(row, rc.lang))
                elif outcome == "no matching alarm":
                    self._enqueue(tx, None, rc, "ack.unknown", {})
        log.info("SMS from %s via %s: %r -> %s%s", msg.sender, msg.channel, msg.text, outcome,
                 f" (alarm {alert_id})" if alert_id else "")
        self.stats.inc(f"incoming_{outcome.replace(' ', '_')}")
        self.wake_dispatcher()
        return outcome

    def open_tracks(self) -> list[tuple[str, str, float, float | None]]:
        """(key, state, started, peak) of every open alarm, for `Rules.restore`."""
        return [(a.key, a.state, a.started, a.peak) for a in self.journal.alerts.find(open_only=True, limit=100_000)]
