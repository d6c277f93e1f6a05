"""Messages out and in: the `outbox` (every SMS, call or cloud message an alarm causes) and `incoming`.

A message is queued in the transaction that stores its cause, then delivered by the dispatcher
(`daemon/alarms/dispatcher.py`): claimed `sending` before its channel is called, `sent`, `failed`,
`unknown` (may have gone out) or `pending` again with a retry time after. Delivery reports land on
the message they confirm. Replies (`incoming`) are kept with what they did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from daemon.storage.db import Database, Tx, and_equal

_COLS = (
    "id, alert_id, created, contact, address, notifier, lang, text, state, attempts, last_error, sent_at, ref, "
    "fallbacks, msg_key, params, next_try"
)


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


Told = tuple[str, str, str, str, str | None]
"""Someone an alarm's messages went to, on the channel they first went by: (contact, address, notifier, lang,
fallbacks)."""


class Outbox:
    """The `outbox` and `incoming` tables: reads on this thread's reader, queueing in the caller's `Tx`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.now: Callable[[], float] = time.time  # the daemon's Clock once `Journal.use_clock` is called

    # -- reads

    def find(self, *, state: str | None = None, alert_id: int | None = None, limit: int = 500) -> list[OutboxRow]:
        sql, args = and_equal(f"SELECT {_COLS} FROM outbox WHERE 1=1", {"state": state, "alert_id": alert_id})
        return [OutboxRow(*row) for row in self._db.read(sql + " ORDER BY id LIMIT ?", [*args, limit])]

    def due(self, now: float, limit: int = 200) -> list[OutboxRow]:
        """Pending messages whose retry time has come, oldest first."""
        sql = (f"SELECT {_COLS} FROM outbox WHERE state = 'pending' "
               "AND (next_try IS NULL OR next_try <= ?) ORDER BY id LIMIT ?")
        return [OutboxRow(*row) for row in self._db.read(sql, (now, limit))]

    def delivery(self, outbox_id: int) -> tuple[int | None, str | None]:
        row = self._db.one("SELECT delivered, delivery_detail FROM outbox WHERE id=?", (outbox_id,))
        return (row[0], row[1]) if row else (None, None)

    def alerts_told(self, *, sender_key: str, phone_key: Callable[[str], str]) -> list[int]:
        """Alarms about which a message went (or was queued) to this phone number."""
        rows = self._db.read("SELECT DISTINCT alert_id, address FROM outbox WHERE alert_id IS NOT NULL")
        return sorted({int(a) for a, addr in rows if phone_key(addr) == sender_key})

    def count_by_state(self) -> list[tuple[str, int]]:
        return [(str(s), int(n)) for s, n in self._db.read("SELECT state, COUNT(*) FROM outbox GROUP BY state")]

    # -- delivery, each its own transaction

    def claim(self, outbox_id: int) -> bool:
        """Mark a pending message `sending` before its channel is called; False if it was not pending."""
        with self._db.transaction() as tx:
            cur = tx.execute("UPDATE outbox SET state='sending', attempts=attempts+1 WHERE id=? AND state='pending'",
                             (outbox_id,))
            return cur.rowcount == 1

    def finish(self, outbox_id: int, state: str, error: str | None, ref: str | None,
               next_try: float | None) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET state=?, last_error=?, ref=COALESCE(?, ref), next_try=?, "
                "sent_at=CASE WHEN ?='sent' THEN ? ELSE sent_at END WHERE id=?",
                (state, error, ref, next_try, state, self.now(), outbox_id),
            )

    def mark_delivered(self, notifier: str, ref: str, delivered: bool, detail: str) -> int | None:
        """Record a delivery report on the newest sent message of `notifier` with that reference.

        Modem references wrap at 256, so the newest match is the one the report is about."""
        with self._db.transaction() as tx:
            row = tx.execute("SELECT id FROM outbox WHERE notifier=? AND state='sent' AND ref=? ORDER BY id DESC "
                             "LIMIT 1", (notifier, ref)).fetchone()
            if row is None:
                return None
            tx.execute("UPDATE outbox SET delivered=?, delivery_detail=? WHERE id=?",
                       (1 if delivered else 0, detail or None, row[0]))
            return int(row[0])

    # -- inside the caller's transaction

    @staticmethod
    def enqueue(tx: Tx, alert_id: int | None, created: float, contact: str, address: str, notifier: str, lang: str,
                text: str, fallbacks: str | None, msg_key: str | None, params: str | None) -> None:
        """Queue a message: `fallbacks` the channels after `notifier` (comma-separated), `params` its JSON."""
        tx.execute(
            "INSERT INTO outbox (alert_id, created, contact, address, notifier, lang, text, fallbacks, msg_key, params)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (alert_id, created, contact, address, notifier, lang, text, fallbacks, msg_key, params),
        )

    @staticmethod
    def told(tx: Tx, alert_id: int) -> list[Told]:
        """Everyone paged about an alarm (not its resolve and acknowledgement notices), first paged first."""
        rows = tx.execute(
            "SELECT contact, address, notifier, lang, fallbacks FROM outbox WHERE alert_id=? "
            "AND msg_key NOT IN ('resolve', 'ack.notice', 'ack.reply') GROUP BY contact ORDER BY MIN(id)",
            (alert_id,),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    @staticmethod
    def settle(tx: Tx, outbox_id: int, state: str, error: str | None = None, next_try: float | None = None) -> None:
        """A failed send's outcome: `failed`, `unknown`, or `pending` again at `next_try`."""
        tx.execute("UPDATE outbox SET state=?, last_error=?, next_try=? WHERE id=?",
                   (state, error, next_try, outbox_id))

    @staticmethod
    def mark_unknown(tx: Tx, outbox_id: int) -> None:
        """Found `sending` after a crash: it may or may not have gone out."""
        tx.execute("UPDATE outbox SET state='unknown' WHERE id=?", (outbox_id,))

    @staticmethod
    def shift_timers(tx: Tx, step: float) -> None:
        """Retry times of pending messages move with a wall-clock step."""
        tx.execute("UPDATE outbox SET next_try = next_try + ? WHERE next_try IS NOT NULL AND state = 'pending'",
                   (step,))

    @staticmethod
    def record_incoming(tx: Tx, ts: float, channel: str, sender: str, text: str, alert_id: int | None,
                        outcome: str) -> None:
        """A reply as it came, with the alarm it named and what it did."""
        tx.execute("INSERT INTO incoming (ts, channel, sender, text, alert_id, outcome) VALUES (?,?,?,?,?,?)",
                   (ts, channel, sender, text, alert_id, outcome))
