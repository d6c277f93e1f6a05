"""Alert lifecycle, escalation and acknowledgement; the outbox and its delivery.

States: pending -> firing -> acknowledged -> resolved (or pending -> cancelled when the
value came back before the delay ended). Each transition is stored with its audit entry
and the messages it causes in ONE transaction, before any message is sent; escalation
timers live in the alert row, so a restart resumes them and sends nothing twice.

Delivery (Dispatcher): a message is marked `sending` before its channel is called and
`sent` after. A channel failure hands the message to the step's next channel at once
(at most once per channel); on the last channel it is retried with backoff. A message
found `sending` after a crash has an unknown fate on that channel: it is marked
`unknown` and offered to the next channel, never resent on the same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daemon.alarms.rules import RuleEvent
from daemon.config.schema import AppConfig, ContactConfig
from daemon.messages import render
from daemon.ports.clock import Clock
from daemon.ports.errors import NotifierError
from daemon.ports.notify import Incoming, Message, Notifier
from daemon.ports.retry import Backoff
from daemon.ports.stats import Stats
from daemon.storage.journal import AlertRow, Journal, OutboxRow

log = logging.getLogger("coldchain.alerts")

SITE_ZONE = "_site"  # alarms about the box itself (disk, clock, uplink)
OPEN = ("pending", "firing", "acknowledged")
TEXT_KEY = {
    "temp_high": "alert.temp_high",
    "temp_low": "alert.temp_low",
    "freeze": "alert.freeze",
    "rh_high": "alert.rh_high",
    "rh_low": "alert.rh_low",
    "no_data": "alert.no_data",
    "sensor_fault": "alert.sensor_fault",
    "exposure": "alert.exposure",
    "rate": "alert.rate",
    "band": "alert.band",
    "box_health": "alert.box_health",
}
ACK_RX = re.compile(r"^\s*(?:ack|ok|确认|收到|已收到|好)?\s*[#＃]?\s*(\d{1,9})?\s*[。.!！,，:：]?\s*(.*)$", re.I | re.S)
ACK_WORD = re.compile(r"^\s*(?:ack|ok|确认|收到|已收到|好)(?:\b|(?=[#＃\d]))", re.I)
BARE_NUMBER = re.compile(r"^\s*[#＃]?\s*(\d{1,9})\s*[。.!！]?\s*$")
# A phone's IME in full-width mode types ＡＣＫ　１７: letters, digits and the space folded one to one for matching
FULL_WIDTH = {0x3000: " ", **{c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if chr(c - 0xFEE0).isalnum()}}


@dataclass(frozen=True, slots=True)
class Reply:
    """What an SMS reply asks for: `alert_id` None means the latest open alarm sent to the sender."""

    is_ack: bool
    alert_id: int | None = None
    comment: str | None = None


def parse_reply(text: str) -> Reply:
    """`ACK 17`, `ack17`, `确认 17`, `收到17 门已关` name alarm 17 (what follows is the comment); `ACK`, `收到`,
    `确认`, `OK` or a bare `1` mean the latest alarm; a reply that is only a number (`17`, `#17`) names that alarm.
    Anything else is chatter, including text that merely starts with a number (`10分钟后到`)."""
    folded = text.translate(FULL_WIDTH)  # same length: the comment is cut from the text as the person typed it
    if bare := BARE_NUMBER.match(folded):
        number = int(bare.group(1))
        return Reply(True, None if number == 1 else number)  # "1" is the plain-phone shortcut for "the latest"
    if not ACK_WORD.match(folded):
        return Reply(False)
    m = ACK_RX.match(folded)
    assert m is not None  # every part of it is optional
    return Reply(True, int(m.group(1)) if m.group(1) else None, text[m.start(2):].strip() or None)


@dataclass(frozen=True, slots=True)
class Recipient:
    contact: str
    address: str
    notifier: str
    lang: str
    fallbacks: tuple[str, ...] = ()


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
    except (KeyError, IndexError):
        return detail


def phone_key(number: str) -> str:
    """Comparable form of a phone number: +86 138..., 0086138..., 86138... and 138... match."""
    digits = re.sub(r"\D", "", number)
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        digits = "86" + digits
    return digits


def backoff(first: float, attempts: int) -> float:
    return Backoff(first, 900.0).nth(attempts)


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
        self.contacts = {c.id: c for c in cfg.contacts}

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

    # -- who is told

    def _lang(self, c: ContactConfig | None) -> str:
        return (c.language if c and c.language else None) or self.cfg.site.language

    def step_recipients(self, step: int) -> list[Recipient]:
        """Who step `step` of the escalation chain pages, each with its channels in order."""
        notifiers = [n.id for n in self.cfg.notifiers] or ["log"]
        steps = self.cfg.escalation.steps
        if steps:
            s = steps[step]
            chosen = [self.contacts[c] for c in s.contacts]
            channels = tuple(s.notifiers or notifiers)
        else:
            chosen = list(self.contacts.values())
            channels = tuple(notifiers)
        if not chosen:
            return [Recipient("log", "-", channels[0], self.cfg.site.language, channels[1:])]
        return [Recipient(c.id, c.phone or c.id, channels[0], self._lang(c), channels[1:]) for c in chosen]

    def first_recipients(self) -> list[Recipient]:
        return self.step_recipients(0)

    def _next_due(self, row_fired: float, step: int, now: float) -> float | None:
        steps, repeat = self.cfg.escalation.steps, self.cfg.escalation.repeat
        if step + 1 < len(steps):
            return row_fired + steps[step + 1].after
        return now + repeat if repeat else None

    # -- texts

    def params(self, row: AlertRow, lang: str, **extra: object) -> dict[str, str]:
        """Every placeholder a text or a cloud-SMS template may use, as strings."""
        site_zone = row.zone == SITE_ZONE
        zone = None if site_zone else self.cfg.zone(row.zone)
        com = None if site_zone else self.cfg.commodity(row.zone)
        end = row.resolved or row.fired or self.clock.now()
        p: dict[str, object] = {
            "site": self.cfg.site.name,
            "zone": zone.display_name(lang) if zone else "",
            "commodity": com.name(lang) if com else "",
            "value": _fmt(row.value),
            "limit": _fmt(row.limit_value),
            "minutes": max(round((end - row.started) / 60), 0),
            "id": row.id,
            "sensor": row.sensor or "",
            "detail": render_detail(row.detail or "", lang),
            "what": render(f"kind.{row.kind}", lang),
            **extra,
        }
        return {k: str(v) for k, v in p.items()}

    def text(self, row: AlertRow, lang: str, resolved: bool = False) -> str:
        key = "resolve" if resolved else TEXT_KEY[row.kind]
        return render(key, lang, **self.params(row, lang))

    # -- persistence of rule events

    def apply(self, events: Sequence[RuleEvent]) -> list[tuple[str, AlertRow]]:
        """Persist events (blocking; call from a thread). Returns (action, row) for each change.

        An event the journal refuses (disk full) does not stop the others; once they are stored and announced,
        the first refusal is raised, so the caller knows the rules are ahead of the journal (`Rules.forget`)."""
        changes: list[tuple[str, AlertRow]] = []
        refused: sqlite3.Error | None = None
        for ev in events:
            try:
                row = self._apply_one(ev)
            except sqlite3.Error as exc:
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
            texts = [o.text for o in self.journal.outbox(alert_id=row.id)] if action in ("fire", "clear") else []
            for fn in self.listeners:
                try:
                    fn(action, row, texts)
                except Exception:
                    log.exception("alert listener failed")
        if changes:
            self.wake_dispatcher()

    @staticmethod
    def _row(db: sqlite3.Connection, aid: int) -> AlertRow:
        return AlertRow(*db.execute(f"SELECT {Journal._ALERT_COLS} FROM alerts WHERE id=?", (aid,)).fetchone())

    @staticmethod
    def _open(db: sqlite3.Connection, key: str) -> AlertRow | None:
        row = db.execute(
            f"SELECT {Journal._ALERT_COLS} FROM alerts WHERE key = ? AND state IN ('pending','firing','acknowledged')",
            (key,),
        ).fetchone()
        return AlertRow(*row) if row else None

    def _apply_one(self, ev: RuleEvent) -> AlertRow | None:
        with self.journal.transaction() as db:
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
                self._audit(db, aid, ev.ts, "cancelled", ev.detail or "back in range before the delay ended")
            elif ev.action == "fire":
                if cur is not None and cur.state != "pending":
                    return None
                aid = self._insert(db, ev, "firing") if cur is None else cur.id
                now = self.clock.now()
                db.execute(
                    "UPDATE alerts SET state='firing', fired=?, value=?, peak=?, detail=?, esc_step=0, esc_next=? "
                    "WHERE id=?",
                    (ev.ts, ev.value, ev.peak, ev.detail or None, self._next_due(ev.ts, 0, now), aid),
                )
                self._audit(db, aid, ev.ts, "firing")
                row = self._row(db, aid)
                for rc in self.step_recipients(0):
                    self._enqueue(db, row, rc, TEXT_KEY[row.kind], self.params(row, rc.lang))
                self.stats.inc("alarms_fired")
            else:  # clear
                if cur is None:
                    return None
                aid = cur.id
                db.execute(
                    "UPDATE alerts SET state='resolved', resolved=?, peak=COALESCE(?, peak), value=?, esc_next=NULL "
                    "WHERE id=?",
                    (ev.ts, ev.peak, ev.value, aid),
                )
                self._audit(db, aid, ev.ts, "resolved", ev.detail or None)
                if cur.state != "pending":
                    self._tell_everyone_told(db, self._row(db, aid), "resolve")
                self.stats.inc("alarms_resolved")
            return self._row(db, aid)

    def _tell_everyone_told(self, db: sqlite3.Connection, row: AlertRow, key: str, *, skip: str | None = None,
                            **extra: object) -> None:
        told = db.execute(
            "SELECT contact, address, notifier, lang, fallbacks FROM outbox WHERE alert_id=? "
            "AND msg_key NOT IN ('resolve', 'ack.notice', 'ack.reply') GROUP BY contact ORDER BY MIN(id)",
            (row.id,),
        ).fetchall()
        for contact, address, notifier, lang, fallbacks in told:
            if contact == skip:
                continue
            rc = Recipient(contact, address, notifier, lang, tuple(filter(None, (fallbacks or "").split(","))))
            self._enqueue(db, row, rc, key, self.params(row, lang, **extra))

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

    def _enqueue(self, db: sqlite3.Connection, row: AlertRow | None, rc: Recipient, key: str,
                 params: dict[str, str]) -> None:
        text = render(key, rc.lang, **params)
        db.execute(
            "INSERT INTO outbox (alert_id, created, contact, address, notifier, lang, text, fallbacks, msg_key, params)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (row.id if row else None, self.clock.now(), rc.contact, rc.address, rc.notifier, rc.lang, text,
             ",".join(rc.fallbacks) or None, key, json.dumps(params, ensure_ascii=False)),
        )

    # -- escalation

    def escalate(self) -> list[AlertRow]:
        """Advance every firing, unacknowledged alarm whose next step is due (blocking)."""
        now = self.clock.now()
        due = self.journal.due_escalations(now)
        out = []
        for aid in due:
            with self.journal.transaction() as db:
                r = db.execute("SELECT state, esc_step, esc_next, fired FROM alerts WHERE id=?", (aid,)).fetchone()
                if r is None or r[0] != "firing" or r[2] is None or r[2] > now:
                    continue
                step = int(r[1] or 0)
                steps = self.cfg.escalation.steps
                nxt = step + 1 if step + 1 < len(steps) else step  # past the last step: repeat it
                row = self._row(db, aid)
                for rc in self.step_recipients(nxt):
                    self._enqueue(db, row, rc, TEXT_KEY[row.kind], self.params(row, rc.lang))
                db.execute("UPDATE alerts SET esc_step=?, esc_next=? WHERE id=?",
                           (nxt, self._next_due(float(r[3] or now), nxt, now), aid))
                self._audit(db, aid, now, "escalated", f"step {nxt}" if nxt != step else f"repeat step {nxt}")
                out.append(row)
                self.stats.inc("escalations")
        if out:
            self.wake_dispatcher()
        return out

    # -- acknowledgement

    def acknowledge(self, alert_id: int, who: str, comment: str | None, via: str = "web") -> AlertRow | None:
        """Acknowledge a pending or firing alarm (blocking); stops escalation. None if nothing to do."""
        with self.journal.transaction() as db:
            row = db.execute("SELECT state FROM alerts WHERE id=?", (alert_id,)).fetchone()
            if row is None or row[0] not in ("firing", "pending"):
                return None
            now = self.clock.now()
            db.execute("UPDATE alerts SET state='acknowledged', acked=?, acked_by=?, esc_next=NULL WHERE id=?",
                       (now, who, alert_id))
            self._audit(db, alert_id, now, "acknowledged", comment, f"{who} ({via})")
            if self.cfg.escalation.notify_ack:
                self._tell_everyone_told(db, self._row(db, alert_id), "ack.notice", skip=who, who=who)
        self.stats.inc("alarms_acknowledged")
        self.wake_dispatcher()
        return self.journal.alert(alert_id)

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
            told = self.journal.alerts_told(sender_key=sender, phone_key=phone_key)
            if wanted is not None and wanted in told:
                alert_id = wanted
            elif wanted is None:
                open_told = [a for a in told if (r := self.journal.alert(a)) and r.state in ("firing", "pending")]
                alert_id = max(open_told) if open_told else None
            outcome = "no matching alarm" if alert_id is None else "acknowledged"
            if alert_id is not None and self.acknowledge(alert_id, contact.id, reply.comment or msg.text.strip(),
                                                         via=f"SMS {msg.sender}") is None:
                outcome = "already acknowledged or resolved"
        with self.journal.transaction() as db:
            db.execute("INSERT INTO incoming (ts, channel, sender, text, alert_id, outcome) VALUES (?,?,?,?,?,?)",
                       (msg.ts, msg.channel, msg.sender, msg.text, alert_id, outcome))
            if contact is not None and is_ack and self.cfg.escalation.reply_to_ack:
                rc = Recipient(contact.id, msg.sender, msg.channel, self._lang(contact))
                if outcome == "acknowledged" and alert_id is not None:
                    self._enqueue(db, self._row(db, alert_id), rc, "ack.reply",
                                  self.params(self._row(db, alert_id), rc.lang))
                elif outcome == "no matching alarm":
                    self._enqueue(db, None, rc, "ack.unknown", {})
        log.info("SMS from %s via %s: %r -> %s%s", msg.sender, msg.channel, msg.text, outcome,
                 f" (alarm {alert_id})" if alert_id else "")
        self.stats.inc(f"incoming_{outcome.replace(' ', '_')}")
        self.wake_dispatcher()
        return outcome

    def open_tracks(self) -> list[tuple[str, str, float, float | None]]:
        """(key, state, started, peak) of every open alarm, for `Rules.restore`."""
        return [(a.key, a.state, a.started, a.peak) for a in self.journal.alerts(open_only=True, limit=100_000)]


class Dispatcher:
    """Sends due outbox messages, oldest first, through their channel (see module doc)."""

    def __init__(self, journal: Journal, notifiers: dict[str, Notifier], stats: Stats, ready: asyncio.Event,
                 clock: Clock | None = None, retry_after: float = 30.0, max_attempts: int = 8) -> None:
        self.journal = journal
        self.notifiers = notifiers
        self.stats = stats
        self.ready = ready
        self.clock = clock or Clock()
        self.retry_after = retry_after
        self.max_attempts = max_attempts

    def recover(self) -> int:
        """After a crash: messages left `sending` may or may not have gone out (blocking)."""
        rows = self.journal.outbox(state="sending", limit=100_000)
        for row in rows:
            log.warning("message %d to %s via %s may or may not have been sent before the restart; not resending "
                        "on that channel%s", row.id, row.contact, row.notifier,
                        f", offering it to {row.fallbacks.split(',')[0]}" if row.fallbacks else "")
            with self.journal.transaction() as db:
                db.execute("UPDATE outbox SET state='unknown' WHERE id=?", (row.id,))
                self._fall_back(db, row)
        self.stats.inc("messages_unknown", len(rows))
        return len(rows)

    async def run(self) -> None:
        """Recover from a crash once, then send whenever woken (or every 10 s for retries)."""
        await asyncio.to_thread(self.recover)
        while True:
            await self.drain()
            self.ready.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands as the event is
            # set, and the daemon's stop then waited forever for this loop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.retry_after, 10.0)):
                    await self.ready.wait()

    def _fall_back(self, db: sqlite3.Connection, row: OutboxRow) -> bool:
        chain = [c for c in (row.fallbacks or "").split(",") if c]
        if not chain:
            return False
        db.execute(
            "INSERT INTO outbox (alert_id, created, contact, address, notifier, lang, text, fallbacks, msg_key, params)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (row.alert_id, self.clock.now(), row.contact, row.address, chain[0], row.lang, row.text,
             ",".join(chain[1:]) or None, row.msg_key, row.params),
        )
        return True

    async def drain(self) -> int:
        sent = 0
        rows = await asyncio.to_thread(self.journal.due_outbox, self.clock.now())
        for row in rows:
            if await self._send_one(row):
                sent += 1
        return sent

    async def _send_one(self, row: OutboxRow) -> bool:
        notifier = self.notifiers.get(row.notifier)
        if not await asyncio.to_thread(self.journal.claim_outbox, row.id):
            return False  # someone else took it
        error: str
        retryable, maybe_sent = True, False
        try:
            if notifier is None:
                raise NotifierError(row.notifier, "no such notifier is configured")
            msg = Message(row.id, row.alert_id, row.contact, row.address, row.text, row.lang, row.msg_key or "",
                          json.loads(row.params) if row.params else {})
            ref = await notifier.send(msg)
        except NotifierError as exc:
            error, retryable, maybe_sent = str(exc), exc.retryable, exc.maybe_sent
        except Exception as exc:  # a bug in a notifier must not stop the others
            log.exception("notifier %s failed on message %d", row.notifier, row.id)
            error = f"{type(exc).__name__}: {exc}"
        else:
            await asyncio.to_thread(self.journal.finish_outbox, row.id, "sent", None, ref, None)
            self.stats.inc("messages_sent")
            return True
        self.stats.inc("messages_failed")
        attempts = row.attempts + 1

        def fail() -> str:
            with self.journal.transaction() as db:
                if maybe_sent:  # it may have reached the person: never again on this channel
                    self._fall_back(db, row)
                    state, nxt = "unknown", None
                elif self._fall_back(db, row) or not retryable or attempts >= self.max_attempts:
                    state, nxt = "failed", None
                else:
                    state, nxt = "pending", self.clock.now() + backoff(self.retry_after, attempts)
                db.execute("UPDATE outbox SET state=?, last_error=?, next_try=? WHERE id=?",
                           (state, error, nxt, row.id))
            return state

        state = await asyncio.to_thread(fail)
        if row.fallbacks:
            then = " — handed to the next channel"
        elif state == "unknown":  # not "will retry": it never is, on this channel
            then = " — it may have been sent; not resending on this channel"
        else:
            then = " — giving up" if state == "failed" else " — will retry"
        log.warning("message %d to %s via %s failed (attempt %d): %s%s", row.id, row.contact, row.notifier, attempts,
                    error, then)
        if state == "failed" and not row.fallbacks:
            log.error("message %d to %s could not be delivered on any channel", row.id, row.contact)
        self.ready.set()
        return False
