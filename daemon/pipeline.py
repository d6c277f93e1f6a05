"""Source -> validate/normalize -> journal (in batches) -> fan-out to rules and live view.

`emit()` returns only when the samples' readings are committed to the journal, so a
driver may acknowledge its device (MQTT QoS 1, a finished Modbus poll) after awaiting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from daemon.clock import Clock
from daemon.config import AppConfig
from daemon.journal import Journal
from daemon.model import Reading, Sample
from daemon.stats import Stats
from daemon.validate import Rejected, normalize

log = logging.getLogger("coldchain.pipeline")
Subscriber = Callable[[list[Reading]], Awaitable[None] | None]


class Pipeline:
    """Batches readings into journal transactions; one writer, many emitters."""

    def __init__(self, cfg: AppConfig, journal: Journal, clock: Clock, stats: Stats) -> None:
        self.cfg = cfg
        self.journal = journal
        self.clock = clock
        self.stats = stats
        self.sensors = {s.id: s for s in cfg.sensors}
        self.subscribers: list[Subscriber] = []
        self._pending: list[tuple[list[Reading], asyncio.Future[None]]] = []
        self._count = 0
        self._wake = asyncio.Event()

    def to_readings(self, samples: Sequence[Sample]) -> list[Reading]:
        """Validate samples; faults are kept (as FAULT readings), unplaceable ones counted and dropped."""
        now = self.clock.now()
        out: list[Reading] = []
        for s in samples:
            sensor = self.sensors.get(s.sensor)
            if sensor is None:
                self.stats.inc("samples_unknown_sensor")
                if self.stats.once(("unknown_sensor", s.sensor)):
                    log.warning("sample for unknown sensor %r dropped (not in the config)", s.sensor)
                continue
            try:
                r = normalize(s, sensor, self.cfg.site.id, now)
            except Rejected as exc:
                self.stats.inc("samples_rejected")
                if self.stats.once(("rejected", s.sensor, s.quantity)):
                    log.warning("%s", exc)
                continue
            if not r.good:
                self.stats.inc("sensor_faults")
                if self.stats.once(("fault", r.sensor, r.quantity.value, r.note.split(" ")[0])):
                    log.warning("sensor %s (%s): %s", r.sensor, r.quantity.value, r.note)
            out.append(r)
        return out

    async def emit(self, samples: Sequence[Sample]) -> None:
        """Queue samples and wait until their readings are in the journal."""
        readings = self.to_readings(samples)
        if not readings:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((readings, fut))
        self._count += len(readings)
        if self._count >= self.cfg.storage.batch_max or self.cfg.storage.flush_interval == 0:
            self._wake.set()
        await fut

    async def run(self) -> None:
        """Flush whenever a batch is full or `flush_interval` has passed.

        `flush_interval: 0` is group commit: write as soon as the previous commit is done; what
        arrives during a commit goes into the next one, so batches grow with the load by themselves.
        Lowest latency (alarms, MQTT acks), but one commit per reading at low rates (SD card writes)."""
        interval = self.cfg.storage.flush_interval
        while True:
            if interval > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
            else:
                await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> list[Reading]:
        if not self._pending:
            return []
        batch, self._pending, self._count = self._pending, [], 0
        readings = [r for rs, _ in batch for r in rs]
        try:
            stored = await asyncio.to_thread(self.journal.append, readings)
        except Exception as exc:  # disk full, I/O error: the emitters must not acknowledge
            self.stats.inc("journal_write_errors")
            log.error("journal write of %d readings failed: %s", len(readings), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return []
        self.stats.inc("readings_stored", len(stored))
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)
        for sub in self.subscribers:
            try:
                res = sub(stored)
                if res is not None:
                    await res
            except Exception:
                self.stats.inc("subscriber_errors")
                log.exception("reading subscriber %r failed", sub)
        return stored
