"""Delivery of the outbox: each due message through its channel, with fallback, retry and crash recovery.

A message is marked `sending` before its channel is called and `sent` after. A channel failure hands
the message to the step's next channel at once (at most once per channel); on the last channel it is
retried with backoff. A message found `sending` after a crash has an unknown fate on that channel: it
is marked `unknown` and offered to the next channel, never resent on the same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from daemon.ports.clock import Clock
from daemon.ports.errors import NotifierError
from daemon.ports.notify import Message, Notifier
from daemon.ports.retry import Backoff
from daemon.ports.stats import Stats
from daemon.storage.db import Tx
from daemon.storage.journal import Journal
from daemon.storage.outbox import OutboxRow

log = logging.getLogger("coldchain.alerts")


def backoff(first: float, attempts: int) -> float:
    return Backoff(first, 900.0).nth(attempts)


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
        rows = self.journal.outbox.find(state="sending", limit=100_000)
        for row in rows:
            log.warning("message %d to %s via %s may or may not have been sent before the restart; not resending "
                        "on that channel%s", row.id, row.contact, row.notifier,
                        f", offering it to {row.fallbacks.split(',')[0]}" if row.fallbacks else "")
            with self.journal.transaction() as tx:
                self.journal.outbox.mark_unknown(tx, row.id)
                self._fall_back(tx, row)
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

    def _fall_back(self, tx: Tx, row: OutboxRow) -> bool:
        chain = [c for c in (row.fallbacks or "").split(",") if c]
        if not chain:
            return False
        self.journal.outbox.enqueue(tx, row.alert_id, self.clock.now(), row.contact, row.address, chain[0], row.lang,
                                    row.text, ",".join(chain[1:]) or None, row.msg_key, row.params)
        return True

    async def drain(self) -> int:
        sent = 0
        rows = await asyncio.to_thread(self.journal.outbox.due, self.clock.now())
        for row in rows:
            if await self._send_one(row):
                sent += 1
        return sent

    async def _send_one(self, row: OutboxRow) -> bool:
        notifier = self.notifiers.get(row.notifier)
        if not await asyncio.to_thread(self.journal.outbox.claim, row.id):
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
            await asyncio.to_thread(self.journal.outbox.finish, row.id, "sent", None, ref, None)
            self.stats.inc("messages_sent")
            return True
        self.stats.inc("messages_failed")
        attempts = row.attempts + 1

        def fail() -> str:
            with self.journal.transaction() as tx:
                if maybe_sent:  # it may have reached the person: never again on this channel
                    self._fall_back(tx, row)
                    state, nxt = "unknown", None
                elif self._fall_back(tx, row) or not retryable or attempts >= self.max_attempts:
                    state, nxt = "failed", None
                else:
                    state, nxt = "pending", self.clock.now() + backoff(self.retry_after, attempts)
                self.journal.outbox.settle(tx, row.id, state, error, nxt)
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
