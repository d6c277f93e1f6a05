"""Source -> validate/normalize -> screen by the rules -> journal (in batches) -> fan-out.

`submit()` queues samples and returns a future that completes when their readings are
committed to the journal, so a driver may acknowledge its device (MQTT QoS 1, a finished
Modbus poll) once it is done, and go on reading meanwhile. `emit()` is submit-and-wait.

Alarm latency without one commit per reading: the rules `screen` readings as they arrive,
before their commit. What the screen holds back (rule events) is `release`d only after the
readings it came from are committed, in arrival order, and a batch that holds anything is
committed at once instead of waiting for its window. So an SMS never leaves for a
reading that is not in the journal, and quiet batches still share one commit (SD card wear).

The window depends on who answers for a reading until it is committed: the broker resends an MQTT
QoS 1 message the daemon has not acknowledged, so those wait at most `storage.flush_interval`
(latency only); no one resends a polled Modbus/serial reading, so `storage.commit_interval` is what a
power cut may lose of them (docs/robustness.md). A commit takes everything pending, whatever its kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.config.schema import AppConfig
from daemon.ingest.device import DeviceRate
from daemon.ingest.validate import Rejected, normalize
from daemon.ports.clock import Clock
from daemon.ports.errors import ReadingsHeldBack
from daemon.ports.model import Reading, Sample
from daemon.ports.sources import Receipt
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal

log = logging.getLogger("coldchain.pipeline")
UNSYNCED_NOTE = "clock not synchronised"
Subscriber = Callable[[list[Reading]], Awaitable[None] | None]
Screen = Callable[[list[Reading]], list[Any]]
Release = Callable[[list[Any]], Awaitable[None]]
Discard = Callable[[list[Any], BaseException], None]


@dataclass
class _Entry:
    """One submit() (readings) or hold() (no readings): what waits for the next commit."""

    readings: list[Reading]
    committed: asyncio.Future[None]
    held: list[Any] = field(default_factory=list)
    released: asyncio.Future[None] | None = None
    receipt: Receipt | None = None


class Pipeline:
    """Batches readings into journal transactions; one writer, many emitters."""

    def __init__(self, cfg: AppConfig, journal: Journal, clock: Clock, stats: Stats, *, screen: Screen | None = None,
                 release: Release | None = None, discard: Discard | None = None,
                 subscribers: Sequence[Subscriber] = (), acknowledged: frozenset[str] = frozenset(),
                 accepted: Callable[[list[Reading]], None] | None = None) -> None:
        """The hooks are fixed here, by whoever builds the pipeline (the daemon: the rules and the fan-out):

        `screen` sees readings as they arrive and returns what to hold (rule events); `release` gets what
        was held once its readings are committed, in arrival order; `discard` gets what was held for
        readings that were not stored; `accepted` sees readings as they arrive, after the screen (the live
        view: the page shows a polled value before its commit window ends); `subscribers` get every committed
        batch (forwarders, which send only what is in the journal).
        `acknowledged`: the sensor types whose driver acknowledges upstream after the commit
        (`SensorDriver.acknowledges`): their readings wait `flush_interval`, every other type's `commit_interval`."""
        self.cfg = cfg
        self.journal = journal
        self.clock = clock
        self.stats = stats
        self.sensors = {s.id: s for s in cfg.sensors}
        self._acknowledged = acknowledged
        self._screen = screen
        self._on_release = release
        self._on_discard = discard
        self._accepted = accepted
        self._subscribers = tuple(subscribers)
        self._pending: list[_Entry] = []
        self._count = 0
        self._due: float | None = None  # loop time by which what is pending must be committed
        self._urgent = False
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self.device_rate = DeviceRate()

    def to_readings(self, samples: Sequence[Sample]) -> list[Reading]:
        """Validate samples; faults are kept (as FAULT readings), unplaceable ones counted and dropped."""
        now = self.clock.now()
        # stamped by a clock NTP has not set yet (a Pi without RTC after a power cut): kept as is, but marked,
        # so a report or an export shows which times may be off (docs/robustness.md)
        receive_note = UNSYNCED_NOTE if self.clock.synchronised() is False else ""
        out: list[Reading] = []
        sensors, site, keep, stats = self.sensors, self.cfg.site.id, self.device_rate.keep, self.stats
        for s in samples:  # once per sample: names hoisted out of the loop
            sensor = sensors.get(s.sensor)
            if sensor is None:
                stats.inc("samples_unknown_sensor")
                if stats.once(("unknown_sensor", s.sensor)):
                    log.warning("sample for unknown sensor %r dropped (not in the config)", s.sensor)
                continue
            try:
                r = normalize(s, sensor, site, now, receive_note)
            except Rejected as exc:
                stats.inc("samples_rejected")
                if stats.once(("rejected", s.sensor, s.quantity)):
                    log.warning("%s", exc)
                continue
            if not keep(r):  # battery / signal: once an hour or on a change (ingest/device.py)
                stats.inc("device_readings_thinned")
                continue
            if not r.good:
                stats.inc("sensor_faults")
                if stats.once(("fault", r.sensor, r.quantity.value, r.note.split(" ")[0])):
                    log.warning("sensor %s (%s): %s", r.sensor, r.quantity.value, r.note)
            out.append(r)
        return out

    def submit(self, samples: Sequence[Sample], receipt: Receipt | None = None, /) -> asyncio.Future[None] | None:
        """Queue samples; the future completes once their readings are committed (None: nothing to store).
        They wait at most the window of their source's kind (the module docstring); `receipt` is committed
        with them (`daemon/ports/sources.py`)."""
        return self._submit(samples, receipt, waited=False)

    def _submit(self, samples: Sequence[Sample], receipt: Receipt | None = None, *,
                waited: bool) -> asyncio.Future[None] | None:
        readings = self.to_readings(samples)
        if not readings:
            return None
        held: list[Any] = []
        if self._screen is not None:
            try:
                held = self._screen(readings)
            except Exception:
                self.stats.inc("subscriber_errors")
                log.exception("screening %d readings failed; they are still stored", len(readings))
        if self._accepted is not None:
            try:
                self._accepted(readings)
            except Exception:
                self.stats.inc("subscriber_errors")
                log.exception("the accepted-readings hook failed on %d readings; they are still stored", len(readings))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Entry(readings, fut, held, receipt=receipt))
        self._count += len(readings)
        window = self._window(self.sensors[readings[0].sensor].type, waited)  # one submit, one driver, one kind
        if held or self._count >= self.cfg.storage.batch_max or window == 0:
            self._urgent = True
            self._wake.set()
        due = asyncio.get_running_loop().time() + window
        if self._due is None or due < self._due:
            self._due = due
            self._wake.set()  # run() waits for the earlier time
        return fut

    async def emit(self, samples: Sequence[Sample]) -> None:
        """Queue samples and wait until their readings are in the journal: a caller that waits gets the short
        window (`flush_interval`) whatever its kind; a polled driver that need not wait uses `submit`."""
        fut = self._submit(samples, waited=True)
        if fut is not None:
            await fut

    async def after_commit(self, held: list[Any]) -> None:
        """Release `held` after every reading submitted before it is committed, and wait for that.

        Time-driven rule events (delays, no data, box health) take this path so they are stored in
        the order the rules made them, after the reading events made before them."""
        loop = asyncio.get_running_loop()
        entry = _Entry([], loop.create_future(), held, loop.create_future())
        self._pending.append(entry)
        await self.flush()
        assert entry.released is not None
        await entry.released

    def hurry(self) -> None:
        """Commit what is pending without waiting for its window (`DriverContext.hurry`)."""
        if self._pending:
            self._urgent = True
            self._wake.set()

    def _window(self, sensor_type: str, waited: bool) -> float:
        st = self.cfg.storage
        return st.flush_interval if waited or sensor_type in self._acknowledged else st.commit_interval

    async def run(self) -> None:
        """Flush whenever a batch is full, holds rule events, or the window of the oldest pending reading's
        kind has passed (`flush_interval` or `commit_interval`, see the module docstring).

        A window of 0 is group commit: write as soon as the previous commit is done; what
        arrives during a commit goes into the next one, so batches grow with the load by themselves.
        Lowest latency for MQTT acks, but one commit per reading at low rates (SD card writes)."""
        loop = asyncio.get_running_loop()
        while True:
            wait = None if self._due is None else self._due - loop.time()
            if not self._urgent and (wait is None or wait > 0):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
            if self._urgent or (self._due is not None and loop.time() >= self._due):
                self._due, self._urgent = None, False  # what arrives during this commit sets them again
                await self.flush()

    async def flush(self) -> list[Reading]:
        """Commit what is pending, then release what it held, then tell the subscribers."""
        async with self._flushing:
            if not self._pending:
                return []
            batch, self._pending, self._count = self._pending, [], 0
            readings = [r for e in batch for r in e.readings]
            receipts = [e.receipt for e in batch if e.receipt is not None]
            stored: list[Reading] = []
            failed: BaseException | None = None
            if readings:
                try:
                    stored = await asyncio.to_thread(self.journal.commit, readings, receipts)
                except Exception as exc:  # disk full, I/O error: the emitters must not acknowledge
                    failed = exc
                    self.stats.inc("journal_write_errors")
                    log.error("journal write of %d readings failed: %s", len(readings), exc)
                else:
                    self.stats.inc("readings_stored", len(stored))
                    if len(stored) < len(readings):  # a device reading delivered again (readings.py)
                        self.stats.inc("readings_repeated", len(readings) - len(stored))
            for e in batch:
                if e.readings and not e.committed.done():
                    if failed is None:
                        e.committed.set_result(None)
                    else:
                        e.committed.set_exception(failed)
            await self._release(batch, failed)
            if stored:
                await self._tell(stored)
            return stored

    async def _release(self, batch: list[_Entry], failed: BaseException | None) -> None:
        """Hand on what was held for committed readings (in order); forget what was held for lost ones.

        Readings held back on purpose (a full disk keeps its reserve for alarms) still release their
        alarm events: the alarm row keeps the value, and the reading itself comes back later (MQTT
        redelivers it) without raising the alarm twice."""
        if isinstance(failed, ReadingsHeldBack):
            failed = None
        lost = [i for e in batch if e.readings and failed is not None for i in e.held]
        if lost and self._on_discard is not None:
            try:
                self._on_discard(lost, failed or RuntimeError("journal write failed"))
            except Exception:
                log.exception("discarding %d held items failed", len(lost))
        kept = [i for e in batch if not (e.readings and failed is not None) for i in e.held]
        error: BaseException | None = None
        if kept and self._on_release is not None:
            try:
                await self._on_release(kept)
            except Exception as exc:
                error = exc
                self.stats.inc("subscriber_errors")
                log.error("releasing %d held items failed: %s", len(kept), exc)
        for e in batch:
            if e.released is not None and not e.released.done():
                if error is None:
                    e.released.set_result(None)
                else:
                    e.released.set_exception(error)

    async def _tell(self, stored: list[Reading]) -> None:
        for sub in self._subscribers:
            try:
                res = sub(stored)
                if res is not None:
                    await res
            except Exception:
                self.stats.inc("subscriber_errors")
                log.exception("reading subscriber %r failed", sub)
