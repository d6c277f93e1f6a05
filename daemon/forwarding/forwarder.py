"""Store-and-forward: one Forwarder per sink drains the journal from its own durable cursor.

Delivery is at-least-once: the cursor (`sink:<id>` in the journal) advances only after the
server confirmed a batch, so a crash or SIGKILL between send and cursor update resends that
batch, which InfluxDB absorbs (same series and timestamp overwrite the same point).

A backlog drains as a pipeline: the next batch is read and encoded while up to
`sink.max_in_flight` batches are on the wire. Their answers are taken in journal order, and the
cursor moves only over a contiguous run of confirmed batches; when one fails, the batches after
it are forgotten (after their answers) and sent again from the cursor.

Errors, decided per `SinkError.retryable`:
- retryable (server down, timeout, 5xx, auth, unknown database): keep the batch, sleep with
  exponential backoff and jitter, try again. Nothing is skipped, however long the outage.
- not retryable (the server refused the *content*, e.g. a line-protocol rejection): split the
  batch in halves until the refused reading is alone, send the good ones, then skip the refused
  one: log it with its journal id, count it (`forward_rejected`), and move on. It stays in the
  journal; only the uplink goes without it. One bad point must not stop the queue for ever.

Sinks that take them also get the alarm audit log (cursor `events:<id>`) and lot events as EPCIS 2.0
(cursor `epcis:<id>`, built by the function the app passes in), each oldest first and confirmed like a
batch: an outage back-fills them in order, and a resend repeats the same EPCIS eventIDs.

A cursor past the newest journal id (the journal was restored from a backup or replaced) would
send nothing for ever: it is logged, counted (`forward_cursor_resets`) and set back to 0, so the
journal is sent again from its oldest reading (docs/forwarding.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from daemon.messages import catalog, render
from daemon.ports.clock import Clock
from daemon.ports.errors import SinkError
from daemon.ports.model import Reading
from daemon.ports.retry import Backoff, Sleep
from daemon.ports.sinks import AlarmEvent, Batch, LotEpcisEvent, Sink, SiteInfo
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal

log = logging.getLogger("coldchain.forwarder")

EpcisSource = Callable[[int, int], list[LotEpcisEvent]]
"""Blocking: up to `limit` lot events with journal id > `after`, as EPCIS (the app passes daemon/lots/epcis.py)."""


@dataclass
class UplinkState:
    """What /healthz shows of one forwarder; times are epoch seconds of the daemon clock."""

    sink: str
    type: str
    connected: bool | None = None  # None until the first attempt
    last_error: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None
    cursor: int = 0
    lag_readings: int = 0
    lag_seconds: float | None = None
    sent: int = 0
    rejected: int = 0
    failures: int = 0  # consecutive failed attempts; 0 while connected
    cursor_resets: int = 0  # cursor found past the newest journal id, set back to 0


class Forwarder:
    """Sends journaled readings to one sink, oldest first, resuming from its cursor."""

    def __init__(
        self,
        sink: Sink,
        journal: Journal,
        clock: Clock,
        stats: Stats,
        *,
        poll_interval: float = 5.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        site: str = "",
        epcis: EpcisSource | None = None,
        site_info: SiteInfo | None = None,
        language: str = "zh-CN",
    ) -> None:
        self.sink = sink
        self.journal = journal
        self.clock = clock
        self.stats = stats
        self.cursor_name = f"sink:{sink.config.id}"
        self.batch_size = sink.config.batch_size
        self.window = max(1, sink.max_in_flight)
        self.poll_interval = poll_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._sleep = sleep  # real time: network backoff does not follow an accelerated clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._committing: asyncio.Future[None] | None = None
        # The pipeline: batches on the wire, oldest first; the next batch being read and encoded
        # (a backlog only); and the id the next read starts after.
        self._inflight: deque[tuple[Batch, asyncio.Future[None]]] = deque()
        self._ahead: asyncio.Future[Batch | None] | None = None
        self.state = UplinkState(sink=sink.config.id, type=sink.type_key)
        self.state.cursor = journal.cursors.get(self.cursor_name)
        self.site = site
        self.events_cursor_name = f"events:{sink.config.id}"
        self.events_cursor = journal.cursors.get(self.events_cursor_name)
        self.language = language
        self._epcis = epcis if sink.supports_epcis else None
        self.epcis_cursor_name = f"epcis:{sink.config.id}"
        self.epcis_cursor = journal.cursors.get(self.epcis_cursor_name)
        if site_info is not None:
            sink.describe(site_info)
        self._check_cursors()
        self._next_after = self.state.cursor

    # -- triggers

    def notify(self, readings: list[Reading]) -> None:
        """Pipeline subscriber: new readings are in the journal, look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the current step and leave `run()`; the cursor stays where the server confirmed."""
        self._stopping = True
        self._wake.set()

    # -- the loop

    async def run(self) -> None:
        """Forward until stopped: full speed while there is a backlog, then wait for new readings."""
        backoff = Backoff(self.backoff_initial, self.backoff_max, jitter=True, rng=self._rng)
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    events, lot_events = await self._read_events()
                    await self._fill()
                except Exception:  # an I/O error on the SD card: the journal may recover, forwarding must go on
                    self.stats.inc("forward_read_errors")
                    log.exception("%s: reading the journal after id %d failed", self.cursor_name, self._next_after)
                    await self._sleep(self.poll_interval)
                    continue
                if not self._inflight and not events and not lot_events:
                    with contextlib.suppress(Exception):  # a failed cursor write only means a resend later
                        await self._committed()
                        await asyncio.to_thread(self._check_cursors)
                        self._next_after = self.state.cursor
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                    continue
                try:
                    if events:
                        await self._send_events([replace(e, text=self._alarm_text(e)) for e in events])
                    if lot_events:
                        await self._send_epcis(lot_events)
                    if self._inflight:
                        await self._confirm_oldest()
                except Exception as exc:  # a bug in a sink must not end forwarding: retry it like an outage
                    await self._drop_pipeline()
                    if not isinstance(exc, SinkError):
                        log.exception("%s: unexpected error from %s", self.cursor_name, self.sink.source)
                        exc = SinkError(self.sink.source, f"{type(exc).__name__}: {exc}")
                    changed = str(exc) != self.state.last_error
                    self._failed(exc)
                    delay = backoff.next()
                    level = logging.WARNING if changed or self.state.failures % 20 == 1 else logging.DEBUG
                    log.log(level, "%s: %s; %d readings waiting, attempt %d, retry in %.1f s", self.cursor_name, exc,
                            self.lag_readings(), self.state.failures, delay)  # an outage of hours: not a line a minute
                    await self._sleep(delay)
                    continue
                backoff.reset()
            await self._drain()
        finally:
            for _, sent in self._inflight:
                sent.cancel()  # its thread finishes the request; nobody waits for the answer
            if self._ahead is not None:
                self._ahead.cancel()
            await self._drop_pipeline()
            with contextlib.suppress(Exception):
                await self._committed()  # the cursor is on disk before the journal may close

    async def _read_events(self) -> tuple[list[AlarmEvent], list[LotEpcisEvent]]:
        """The alarm audit entries and lot events after their cursors, for sinks that take them."""
        events = await asyncio.to_thread(self.journal.alerts.events_after, self.events_cursor, 500,
                                         self.site) if self.sink.supports_events else []
        lot_events = await asyncio.to_thread(self._epcis, self.epcis_cursor, 100) if self._epcis else []
        return events, lot_events

    async def _drain(self) -> None:
        """Stopping: keep what the server confirms, in order, as far as it goes."""
        while self._inflight:
            batch, sent = self._inflight[0]
            try:
                await sent
            except Exception:
                break
            self._inflight.popleft()
            self._succeeded(batch.count)
            await self._advance(batch.last)

    async def _fill(self) -> None:
        """Put batches on the wire until `window` are or the journal has no more; during a backlog,
        start reading and encoding the next one (Sink.prepare) so that it is ready when a slot frees."""
        while len(self._inflight) < self.window and not self._stopping:
            if self._ahead is not None:
                ahead, self._ahead = self._ahead, None
                batch = await ahead
            else:
                batch = await asyncio.to_thread(self.sink.prepare, self.journal.readings, self._next_after,
                                                self.batch_size)
            if batch is None:
                return
            self._inflight.append((batch, asyncio.ensure_future(self.sink.write_batch(batch))))
            self._next_after = batch.last
            if batch.count < self.batch_size:
                return  # caught up: look again once this one is confirmed
            # A backlog: sequential read-send-commit left the server idle half the time (bench).
            self._ahead = asyncio.ensure_future(
                asyncio.to_thread(self.sink.prepare, self.journal.readings, batch.last, self.batch_size))

    async def _confirm_oldest(self) -> None:
        """Wait for the oldest batch on the wire; move the cursor past it, or isolate a refused reading."""
        batch, sent = self._inflight[0]
        try:
            await sent
        except SinkError as exc:
            if exc.retryable:
                raise
            await self._drop_pipeline()  # batches sent after a refused one: sent again once it is settled
            readings = await asyncio.to_thread(self.journal.readings.read_after, batch.after, batch.count)
            if readings:
                await self._send_readings(readings)  # find the refused reading the slow way, with names to log
            self._next_after = self.state.cursor
            return
        self._inflight.popleft()
        self._succeeded(batch.count)
        await self._advance(batch.last)

    async def _drop_pipeline(self) -> None:
        """Forget the batches on the wire and the one read ahead (after their answers: never more than
        `window` requests at once); the next read starts again at the cursor."""
        pending = [sent for _, sent in self._inflight] + ([self._ahead] if self._ahead is not None else [])
        self._inflight.clear()
        self._ahead = None
        self._next_after = self.state.cursor
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _send_readings(self, batch: Sequence[Reading]) -> None:
        """Send `batch`; on a content rejection, bisect to find and skip the refused readings."""
        try:
            await self.sink.write(batch)
        except SinkError as exc:
            if exc.retryable:
                raise
            if len(batch) > 1:
                mid = len(batch) // 2
                await self._send_readings(batch[:mid])
                await self._send_readings(batch[mid:])
                return
            self._rejected(batch[0], exc)
        else:
            self._succeeded(len(batch))
        await self._advance(int(batch[-1].id or 0))

    async def _send_events(self, events: Sequence[AlarmEvent]) -> None:
        """Alarm audit entries, oldest first; one the server refuses is logged and skipped like a reading."""
        try:
            await self.sink.write_events(events)
        except SinkError as exc:
            if exc.retryable:
                raise
            if len(events) > 1:
                mid = len(events) // 2
                await self._send_events(events[:mid])
                await self._send_events(events[mid:])
                return
            self.stats.inc("forward_events_rejected")
            log.error("%s: alarm event id %d refused by the server, skipped: %s", self.events_cursor_name,
                      events[0].id, exc)
        else:
            self._reached()
            self.stats.inc("forward_events_sent", len(events))
        last = events[-1].id
        await asyncio.to_thread(self.journal.cursors.set, self.events_cursor_name, last)
        self.events_cursor = last

    def _alarm_text(self, e: AlarmEvent) -> str:
        lang = self.language
        kind, state = f"kind.{e.kind}", f"state.{e.state}"
        cat = catalog(lang)
        text = render("uplink.alarm", lang, site=e.site, zone=e.zone, what=cat.get(kind, e.kind),
                      state=cat.get(state, e.state))
        return f"{text} ({e.comment})" if e.comment else text

    async def _send_epcis(self, events: Sequence[LotEpcisEvent]) -> None:
        """Lot events as EPCIS, oldest first; one the server refuses is logged and skipped like a reading."""
        try:
            await self.sink.write_epcis(events)
        except SinkError as exc:
            if exc.retryable:
                raise
            if len(events) > 1:
                mid = len(events) // 2
                await self._send_epcis(events[:mid])
                await self._send_epcis(events[mid:])
                return
            self.stats.inc("forward_epcis_rejected")
            log.error("%s: lot event id %d (%s) refused by the server, skipped: %s", self.epcis_cursor_name,
                      events[0].id, events[0].lot, exc)
        else:
            self._reached()
            self.stats.inc("forward_epcis_sent", len(events))
        last = events[-1].id
        await asyncio.to_thread(self.journal.cursors.set, self.epcis_cursor_name, last)
        self.epcis_cursor = last

    async def _advance(self, last_id: int) -> None:
        """Move the cursor past a confirmed batch. The commit (an fsync) runs while the next batch is
        sent: a drain waited ~30 ms per batch for it on a busy disk (bench). Commits stay in order
        (each waits for the one before), and a crash before one lands only resends confirmed
        readings, which InfluxDB absorbs."""
        await self._committed()
        self._committing = asyncio.ensure_future(
            asyncio.to_thread(self.journal.cursors.set, self.cursor_name, last_id))
        self.state.cursor = last_id

    async def _committed(self) -> None:
        """Wait until the last cursor move is on disk (raises if it failed)."""
        pending, self._committing = self._committing, None
        if pending is not None:
            await pending

    def _check_cursors(self) -> None:
        """Blocking. A cursor past the newest id of its journal table belongs to other rows (a journal
        restored from a backup, or replaced): it would skip every reading until the ids caught up.
        Log it, count it, and start again from 0: re-sending what the server has already overwrites
        the same points; skipping could lose readings the server never got."""
        newest = self.journal.readings.max_id()
        if self.state.cursor > newest:
            log.error("%s: cursor at journal id %d, but the newest reading is id %d: the journal was restored from "
                      "a backup or replaced. Sending it again from its oldest reading (%s keeps one point per "
                      "series and time: what it has already is overwritten, not doubled)", self.cursor_name,
                      self.state.cursor, newest, self.sink.source)
            self._reset_cursor(self.cursor_name)
            self.state.cursor = 0
        if self.sink.supports_events:
            newest = self.journal.alerts.max_event_id()
            if self.events_cursor > newest:
                log.error("%s: cursor at alarm event id %d, but the newest is id %d: the journal was restored or "
                          "replaced. Sending its alarm events again from the oldest", self.events_cursor_name,
                          self.events_cursor, newest)
                self._reset_cursor(self.events_cursor_name)
                self.events_cursor = 0
        if self._epcis is not None:
            newest = self.journal.lot_events.max_id()
            if self.epcis_cursor > newest:
                log.error("%s: cursor at lot event id %d, but the newest is id %d: the journal was restored or "
                          "replaced. Sending its lot events again from the oldest (same event ids: receivers "
                          "de-duplicate)", self.epcis_cursor_name, self.epcis_cursor, newest)
                self._reset_cursor(self.epcis_cursor_name)
                self.epcis_cursor = 0

    def _reset_cursor(self, name: str) -> None:
        self.journal.cursors.set(name, 0)
        self.state.cursor_resets += 1
        self.stats.inc("forward_cursor_resets")

    # -- state

    def _succeeded(self, n: int) -> None:
        self._reached()
        self.state.sent += n
        self.stats.inc("forward_sent", n)

    def _reached(self) -> None:
        """The server confirmed something (readings, alarm or lot events): the link is up again."""
        st = self.state
        if st.connected is not True:
            log.info("%s: connected to %s%s", self.cursor_name, self.sink.source,
                     f" after {st.failures} failed attempts" if st.failures else "")
        st.connected, st.failures, st.last_success_at = True, 0, self.clock.now()

    def _failed(self, exc: SinkError) -> None:
        st = self.state
        st.connected, st.last_error, st.last_error_at = False, str(exc), self.clock.now()
        st.failures += 1
        self.stats.inc("forward_errors")

    def _rejected(self, r: Reading, exc: SinkError) -> None:
        self.state.rejected += 1
        self.state.last_error, self.state.last_error_at = str(exc), self.clock.now()
        self.stats.inc("forward_rejected")
        log.error("%s: reading id %s (%s/%s/%s at %.3f) refused by the server, skipped: %s", self.cursor_name,
                  r.id, r.zone, r.sensor, r.quantity.value, r.ts, exc)

    def lag_readings(self) -> int:
        return max(0, self.journal.readings.max_id() - self.state.cursor)

    def snapshot(self) -> dict[str, Any]:
        """State with fresh lag figures (blocking: reads the journal; call it in a thread)."""
        st = self.state
        st.lag_readings = self.lag_readings()
        oldest = self.journal.readings.read_after(st.cursor, 1)
        st.lag_seconds = round(max(0.0, self.clock.now() - oldest[0].ts), 3) if oldest else 0.0
        return asdict(st)


async def catch_up(forwarders: Sequence[Forwarder], top: int, timeout: float = 3.0) -> None:
    """Before a clean stop, let the forwarders whose server answers send what is committed up to id `top`
    (at most `timeout` s): a restart then leaves no confirmed-but-unforwarded tail. One whose server is
    failing is not waited for; its cursor keeps the rest for the next start."""
    for f in forwarders:
        f.notify([])
    for _ in range(round(timeout / 0.05)):  # polls cursors that the forwarders' own tasks move
        if not any(f.state.failures == 0 and f.state.cursor < top for f in forwarders):
            return
        await asyncio.sleep(0.05)


async def stop_all(forwarders: Sequence[Forwarder], tasks: Sequence[asyncio.Task[None]], grace: float = 2.0) -> None:
    """Ask forwarders to stop, give an in-flight batch `grace` seconds, then cancel the rest."""
    for f in forwarders:
        f.stop()
    if tasks:
        await asyncio.wait(tasks, timeout=grace)
    for t in tasks:
        if not t.done():
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
