"""The running daemon: wires config, journal, drivers, pipeline, rules, alerts and API
into one asyncio loop, and shuts them down in order."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from daemon.alarms.dispatcher import Dispatcher
from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import RuleEvent, Rules
from daemon.app import plugins
from daemon.app.malloc import fix_mmap_threshold
from daemon.app.systemd import notify, watchdog_interval
from daemon.config.schema import AppConfig
from daemon.forwarding.forwarder import Forwarder, catch_up, stop_all
from daemon.ingest.live import LiveView
from daemon.ingest.pipeline import Pipeline
from daemon.lots.epcis import uplink_source
from daemon.lots.precool import Precooling
from daemon.lots.store import Lots
from daemon.ports.clock import Clock
from daemon.ports.model import Reading
from daemon.ports.notify import Incoming, Notifier, NotifierContext
from daemon.ports.registry import Registry
from daemon.ports.retry import Backoff
from daemon.ports.sinks import RoomInfo, Sink, SiteInfo
from daemon.ports.sources import DriverContext, SensorDriver
from daemon.ports.stats import Stats
from daemon.storage.alerts import AlertRow
from daemon.storage.journal import Journal
from daemon.storage.reserve import Reserve
from daemon.storage.retention import Retention
from daemon.storage.rollups import Roller

log = logging.getLogger("coldchain")
PRECOOL_EVERY = 60.0  # seconds between two evaluations of the open precooling runs
RAN_WELL = 300.0  # seconds a crashed driver must have run before its restart backoff starts over


def open_storage(cfg: AppConfig, stats: Stats, journal: Journal | None) -> tuple[Journal, Reserve]:
    """The journal, with the disk space kept back for alarms when the disk fills (storage/reserve.py)."""
    journal = journal or Journal(cfg.storage.journal)
    reserve = Reserve(journal.path, cfg.storage.reserve_mb, stats)
    reserve.attach(journal)
    return journal, reserve


def make_notifiers(cfg: AppConfig, types: Mapping[str, type[Notifier]],
                   context: Callable[[str], NotifierContext]) -> dict[str, Notifier]:
    """One notifier per configured channel, plus the log as the channel of last resort."""
    notifiers: dict[str, Notifier] = {n.id: types[n.type](n, context(n.id)) for n in cfg.notifiers}
    if "log" not in notifiers:
        console = types["console"]
        notifiers["log"] = console(console.Config.model_validate({"id": "log", "type": "console", "stream": "log"}),
                                   context("log"))
    return notifiers


def make_drivers(cfg: AppConfig, types: Mapping[str, type[SensorDriver]],
                 context: Callable[[str], DriverContext]) -> list[SensorDriver]:
    """One driver per group of sensors its type serves together (a bus, a broker, a single device)."""
    by_type: dict[str, list[Any]] = {}
    for s in cfg.sensors:
        by_type.setdefault(s.type, []).append(s)
    drivers: list[SensorDriver] = []
    for kind, sensors in by_type.items():
        cls = types[kind]
        for group in cls.group(sensors):
            drivers.append(cls(group, context(kind)))
    return drivers


def make_forwarders(cfg: AppConfig, types: Mapping[str, type[Sink]], journal: Journal, clock: Clock,
                    stats: Stats) -> list[Forwarder]:
    """One forwarder per uplink sink, each with its own durable cursor in the journal (sink:<id>)."""
    commodities = {z.id: z.commodity for z in cfg.zones if z.commodity}
    epcis = uplink_source(Lots(journal, cfg), clock.now)
    info = site_info(cfg)
    return [Forwarder(types[s.type](s, commodities), journal, clock, stats, site=cfg.site.id, epcis=epcis,
                      site_info=info, language=cfg.site.language) for s in cfg.sinks]


def site_info(cfg: AppConfig) -> SiteInfo:
    """The site as a regional hub sees it (the uplink's retained `site` message)."""
    loc = cfg.site.location
    return SiteInfo(cfg.site.id, cfg.site.name, cfg.site.timezone, (loc.lat, loc.lon) if loc else None,
                    tuple(RoomInfo(z.id, z.name, (z.capacity.value, z.capacity.unit) if z.capacity else None,
                                   z.commodity) for z in cfg.zones), cfg.site.kind)


class Daemon:
    """One site's monitor. `start()` runs everything; `stop()` flushes and closes."""

    def __init__(self, cfg: AppConfig, clock: Clock | None = None, journal: Journal | None = None,
                 registry: Registry | None = None) -> None:
        reg = registry or plugins.registry()
        self.cfg = cfg
        self.clock = clock or Clock()
        self.stats = Stats()
        self.journal, self.reserve = open_storage(cfg, self.stats, journal)
        self.journal.use_clock(self.clock.now)  # one clock: storage's own stamps too (sent_at, created, updated)
        self.live = LiveView()
        self.started_at = self.clock.now()
        # alarms: the rules go on with what was open at the last stop; the outbox with what was unsent
        self.rules = Rules(cfg, self.clock.now())
        self.alerts = AlertManager(cfg, self.journal, self.clock, self.stats)
        self.rules.restore(self.alerts.open_tracks())
        self.reload_mutes()
        self.live.update(self.journal.readings.latest())
        self.notifiers = make_notifiers(cfg, reg.notifiers, self._notifier_context)
        esc = cfg.escalation
        self.dispatcher = Dispatcher(self.journal, self.notifiers, self.stats, self.alerts.outbox_ready, self.clock,
                                     retry_after=esc.retry_after, max_attempts=esc.max_attempts)
        # readings: the rules see them as they arrive; their events are stored once those readings are
        # (pipeline.py); the live view too, so a polled value shows before its commit window ends;
        # committed readings go on to every uplink
        self.forwarders = make_forwarders(cfg, reg.sinks, self.journal, self.clock, self.stats)
        acked = frozenset(s.type for s in cfg.sensors if reg.sensors[s.type].acknowledges)  # MQTT: after commit
        self.pipeline = Pipeline(cfg, self.journal, self.clock, self.stats, screen=self.rules.on_readings,
                                 release=self._release, discard=self._discard,
                                 subscribers=[f.notify for f in self.forwarders],
                                 acknowledged=acked, accepted=self._to_live)
        self.drivers = make_drivers(cfg, reg.sensors, self._driver_context)
        # housekeeping: old readings go (never ahead of an uplink's cursor); history rollups stay current
        self.retention = Retention(self.journal, self.clock, self.stats, raw_retention=cfg.storage.raw_retention,
                                   rollup_retention=cfg.storage.rollup_retention,
                                   cursors=[f.cursor_name for f in self.forwarders])
        self.roller = Roller(self.journal, self.stats, interval=cfg.storage.roll_interval)
        self.precool = Precooling(self.journal, cfg)  # precooling runs: figures, end at 7/8, the too-slow alarm
        # tasks
        self._rules_lock = asyncio.Lock()
        self._restart_sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep  # tests make it instant
        self._inflight: set[asyncio.Future[Any]] = set()
        self.extra_tasks: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.api_port: int | None = None

    def _notifier_context(self, channel: str) -> NotifierContext:
        return NotifierContext(on_incoming=self._incoming, on_delivery=functools.partial(self._delivery, channel),
                               log=logging.getLogger(f"coldchain.notify.{channel}"))

    def _driver_context(self, kind: str) -> DriverContext:
        return DriverContext(self.clock, self.pipeline.emit, self._set_online,
                             logging.getLogger(f"coldchain.driver.{kind}"), self.cfg, self.pipeline.submit,
                             self.journal.receipts.recent, self.pipeline.hurry)

    # -- journal work in threads

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking journal work in a thread that `stop()` waits for before closing the journal.

        A cancelled caller does not stop a thread that is already writing; without this, an
        alarm being stored at shutdown would hit a closed database."""
        fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._inflight.add(fut)
        fut.add_done_callback(self._inflight.discard)
        return await asyncio.shield(fut)

    # -- fan-out

    def _to_live(self, readings: list[Reading]) -> None:
        self.live.update(readings)

    async def _apply(self, events: list[RuleEvent]) -> None:
        """Store rule events (blocking work in a thread). If the journal refuses them (disk full), the rules
        forget them too, so the alarm is raised again on the next evaluation rather than lost."""
        try:
            await self._in_thread(self.reserve.retrying, self.alerts.apply, events)  # once more in the reserve
        except Exception:
            self.stats.inc("alarm_write_errors")
            with contextlib.suppress(Exception):
                self.rules.forget((e.key for e in events), await asyncio.to_thread(self.alerts.open_tracks))
            raise

    async def _release(self, events: list[RuleEvent]) -> None:
        """Rule events whose readings are committed (or time-driven ones), stored in the order they were made."""
        async with self._rules_lock:
            await self._apply(events)

    def _discard(self, events: list[RuleEvent], exc: BaseException) -> None:
        """The readings behind these events were not stored (disk full): nothing is raised for them now; the
        rules forget them so the reading's redelivery, or the next one, raises them again."""
        self.stats.inc("alarm_events_discarded", len(events))
        log.warning("%d alarm events dropped with their unstored readings (%s); re-evaluated on the next reading",
                    len(events), exc)
        self.rules.forget((e.key for e in events), self.alerts.open_tracks())

    def _incoming(self, msg: Incoming) -> None:
        """Called by a channel (possibly from its own thread) for every message received."""
        self._loop.call_soon_threadsafe(
            lambda: self._spawn(self._in_thread(self.alerts.handle_incoming, msg), "incoming"))

    def _delivery(self, channel: str, ref: str, delivered: bool, detail: str) -> None:
        """A channel's delivery report (may come from its own thread): recorded on the message."""
        self.stats.inc("messages_delivered" if delivered else "messages_undelivered")

        def record() -> None:
            oid = self.journal.outbox.mark_delivered(channel, ref, delivered, detail)
            level = logging.INFO if delivered else logging.WARNING
            log.log(level, "%s: message %s (ref %s) %s%s", channel, oid if oid else "?", ref,
                    "delivered" if delivered else "NOT delivered", f": {detail}" if detail else "")

        self._loop.call_soon_threadsafe(lambda: self._spawn(self._in_thread(record), "incoming"))

    def _set_online(self, sensor: str, online: bool, reason: str) -> None:
        was = self.live.sensors.get(sensor)
        if was is None or was.online != online:
            log.info("sensor %s is %s%s", sensor, "online" if online else "offline", f" ({reason})" if reason else "")
        self.live.set_online(sensor, online, reason)

    async def _ticker(self) -> None:
        period = max(1.0, min((s.stale_after_s for s in self.cfg.sensors), default=60.0) / 6)
        while True:
            await self.clock.sleep(period)
            await self.tick()

    async def tick(self) -> None:
        """Time-driven alarm work: a clock step first, then no-data and delays, then escalation."""
        async with self._rules_lock:
            step = self.clock.jumped()
            if step:
                await self._clock_jumped(step)
        events = self.rules.tick(self.clock.now())
        if events:
            await self.pipeline.after_commit(events)
        await self._in_thread(self.alerts.escalate)

    async def _clock_jumped(self, step: float) -> None:
        """NTP stepped the clock (a Pi without RTC boots with a stale time): timers move with it, so no alarm
        fires early or late and no silence is invented; readings already stored keep their stamps."""
        self.stats.inc("clock_jumps")
        log.warning("system clock stepped by %+.0f s; alarm delays, no-data and escalation timers moved with it",
                    step)
        self.rules.clock_jumped(step)
        self.started_at += step
        await self._in_thread(self.journal.shift_timers, step, self.clock.now() - step)
        self.reload_mutes()

    def reload_mutes(self) -> None:
        self.rules.set_mutes((z, a, b, reason) for _, z, a, b, reason, _ in self.journal.mutes.find(
            active_at=self.clock.now()))

    async def commit_pending(self) -> None:
        """See `daemon.api.services.Services.commit_pending`."""
        await self.pipeline.flush()

    def acknowledge(self, alert_id: int, who: str, comment: str | None, via: str) -> AlertRow | None:
        """Acknowledge a pending or firing alarm (blocking); stops its escalation. None if nothing to do."""
        return self.alerts.acknowledge(alert_id, who, comment, via)

    def record_action(self, alert_id: int, who: str, kind: str, text: str) -> AlertRow:
        """A corrective action on an alarm (blocking; see `daemon/alarms/followup.py`)."""
        return self.alerts.record_action(alert_id, who, kind, text)

    def close_alarm(self, alert_id: int, who: str, comment: str | None) -> AlertRow:
        """A manager closes an alarm (blocking; see `daemon/alarms/followup.py`)."""
        return self.alerts.close(alert_id, who, comment)

    def mute(self, zone: str, seconds: float, reason: str, who: str) -> int:
        """Maintenance: no new alarms for `zone` for `seconds` (blocking; logged and stored)."""
        now = self.clock.now()
        mid = self.journal.mutes.add(zone, now, now + seconds, reason, who)
        log.warning("zone %s muted for %.0f min by %s: %s", zone, seconds / 60, who, reason)
        self.reload_mutes()
        return mid

    def unmute(self, mute_id: int, who: str) -> bool:
        ok = self.journal.mutes.end(mute_id, self.clock.now())
        if ok:
            log.warning("mute %d ended early by %s", mute_id, who)
        self.reload_mutes()
        return ok

    async def _box_health(self) -> None:
        """Every minute: disk under the journal, clock synchronised (after an hour's grace for NTP)."""
        from daemon.ports.clock import clock_synchronised

        while True:
            now = self.clock.now()
            events = []
            free = await asyncio.to_thread(self.reserve.check)  # releases or re-makes the disk reserve first
            events += self.rules.box("disk", free < self.cfg.storage.min_free_mb, now, f"box.disk|free={free:.0f}")
            synced = clock_synchronised()
            if synced is not None and now - self.started_at > 3600:
                events += self.rules.box("clock", not synced, now, "box.clock")
            if events:
                await self.pipeline.after_commit(events)
            await self.clock.sleep(60)

    async def _precooling(self) -> None:
        """Every minute (only with a precooling room): each open run's figures from the journal; a run too slow for
        its target raises its alarm, one that reached 7/8 ends and clears it, in the order of the other alarms."""
        while True:
            await self.precool_once()
            await self.clock.sleep(PRECOOL_EVERY)

    async def precool_once(self) -> None:
        events = await self._in_thread(self.precool.evaluate, self.clock.now())
        if events:
            await self.pipeline.after_commit(events)

    async def _watchdog(self, period: float) -> None:
        """Pet systemd's watchdog only while the loop runs and the journal accepts writes (readings held back by
        the disk reserve do not count: a restart would not free the disk, and would pause the SMS)."""

        def failed() -> int:
            return self.stats.get("journal_write_errors") - self.stats.get("readings_held_back")

        last_errors = failed()
        while True:
            await asyncio.sleep(period)
            errors = failed()
            if errors == last_errors:
                notify("WATCHDOG=1")
            else:
                log.error("journal writes failing: not petting the watchdog")
            last_errors = errors

    async def _supervise(self, driver: SensorDriver | Notifier, restart_on_return: bool = True) -> None:
        """Restart a crashed driver with backoff; the others, alarms and SMS keep running."""
        backoff = Backoff(1.0, 60.0)
        while True:
            started = time.monotonic()
            try:
                await driver.run()
                if not restart_on_return:
                    return
                log.warning("driver %s stopped by itself; restarting", driver.source)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.inc("driver_crashes")
                if time.monotonic() - started > RAN_WELL:
                    backoff.reset()  # it ran fine for a while: a new fault, not the same one again
                log.exception("driver %s crashed; restarting in %.0f s", driver.source, backoff.upcoming)
            await self._restart_sleep(backoff.next())

    async def _keep_running(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a core loop (outbox, ticker, box health) again after an error such as a full disk: a task that
        died here would stop every SMS or every no-data alarm until the next restart, silently."""
        backoff = Backoff(1.0, 60.0)
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.inc("task_errors")
                log.exception("%s failed; running it again in %.0f s", name, backoff.upcoming)
            await asyncio.sleep(backoff.next())

    # -- lifecycle

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        if name == "incoming":
            task.add_done_callback(self._tasks.remove)

    async def start(self) -> None:
        """Start every task; returns once the API (if enabled) is listening."""
        fix_mmap_threshold()  # before any sign-in: argon2's 19 MiB must not stay in a malloc arena
        self._loop = asyncio.get_running_loop()
        await self._check_after_unclean_stop()
        self.alerts.loop = self._loop  # alarm writes run in threads; they wake the dispatcher through the loop
        self._spawn(self.pipeline.run(), "pipeline")
        for n in self.notifiers.values():
            self._spawn(self._supervise(n, restart_on_return=False), n.source)
        self._spawn(self._keep_running("outbox dispatcher", self.dispatcher.run), "dispatcher")
        self._spawn(self._keep_running("alarm ticker", self._ticker), "ticker")
        self._spawn(self._keep_running("box-health check", self._box_health), "box-health")
        if any(z.precool for z in self.cfg.zones):
            self._spawn(self._keep_running("precooling runs", self._precooling), "precooling")
        for d in self.drivers:
            self._spawn(self._supervise(d), d.source)
        for f in self.forwarders:
            self._spawn(f.run(), f.cursor_name)
        self._spawn(self.retention.run(), "retention")
        self._spawn(self.roller.run(), "rollups")
        if self.cfg.reports.schedules:
            from daemon.reports.scheduled import ScheduledReports

            reports = ScheduledReports(self.journal, self.cfg, self.clock, self.alerts.wake_dispatcher)
            self._spawn(self._keep_running("scheduled reports", reports.run), "scheduled-reports")
        for factory in self.extra_tasks:
            self._spawn(factory(), getattr(factory, "__name__", "task"))
        if self.cfg.api.enabled:
            await self._start_api()
        if (period := watchdog_interval()) is not None:
            self._spawn(self._watchdog(period), "watchdog")
        # What start-up made (modules, config models, the API) lives as long as the daemon: frozen, the cyclic
        # GC no longer walks it in every full collection. A backlog drain keeps thousands of messages in flight,
        # which start full collections: 6 in 2 rounds of bench.ingest, ~66 ms each (docs/benchmarks.md, session 11).
        gc.freeze()
        notify("READY=1\nSTATUS=monitoring " + f"{len(self.cfg.sensors)} sensors")
        log.info("coldchain running: site %s, %d sensors, %d zones, journal %s", self.cfg.site.id,
                 len(self.cfg.sensors), len(self.cfg.zones), self.journal.path)

    async def _check_after_unclean_stop(self) -> None:
        """A power cut or kill left the run mark: check the journal's file, say what was found, carry on."""
        result = await asyncio.to_thread(self.journal.begin_run)
        if result is None:
            return
        if result == "ok":
            log.warning("the previous run did not stop cleanly (power cut, kill or crash); "
                        "journal PRAGMA quick_check: ok; resuming from the last committed reading")
        else:
            self.stats.inc("journal_damaged")
            log.error("the previous run did not stop cleanly and journal PRAGMA quick_check reports: %s; "
                      "monitoring continues, but copy %s aside and run `coldchain doctor`", result,
                      self.journal.path)

    async def _start_api(self) -> None:
        from daemon.api import create_app
        from daemon.api.server import Server

        server = Server(create_app(self), self.cfg.api.host, self.cfg.api.port)
        try:
            self.api_port = await server.start()
        except OSError as exc:
            log.error("API: cannot listen on %s:%s: %s", self.cfg.api.host, self.cfg.api.port, exc.strerror or exc)
            raise SystemExit(f"API on {self.cfg.api.host}:{self.cfg.api.port}: {exc.strerror or exc}") from None
        self._server = server

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self, duration: float | None = None) -> None:
        """Run until SIGTERM/SIGINT, `request_stop()`, or `duration` real seconds."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=duration)

    async def stop(self) -> None:
        """Stop drivers first, then flush what they sent, then the rest; close the journal last."""
        notify("STOPPING=1")
        drivers = [t for t in self._tasks if t.get_name() in {d.source for d in self.drivers}]
        for d in self.drivers:  # no new input; commit what was taken in; let drivers acknowledge it
            d.quiesce()
        await self.pipeline.flush()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(d.settle() for d in self.drivers)), timeout=10)
        for t in drivers:
            t.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)
        for d in self.drivers:
            with contextlib.suppress(Exception):
                await d.close()
        await self.pipeline.flush()
        if getattr(self, "_server", None) is not None:
            await self._server.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.dispatcher.drain(), timeout=5)
        self.retention.stop()
        self.roller.stop()
        names = {f.cursor_name for f in self.forwarders}
        await catch_up(self.forwarders, self.journal.readings.max_id())
        await stop_all(self.forwarders, [t for t in self._tasks if t.get_name() in names])
        for f in self.forwarders:
            with contextlib.suppress(Exception):
                await f.sink.close()
        for t in self._tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for n in self.notifiers.values():
            with contextlib.suppress(Exception):
                await n.close()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        self.journal.close()
        self.journal.end_run()
        gc.unfreeze()  # what start() froze is collectable again (tests and benches run many daemons in one process)
        log.info("coldchain stopped; journal closed cleanly")
