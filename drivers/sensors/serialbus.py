"""The polling skeleton both serial drivers share: sensors on one port, asked in turn by one
APScheduler job, with faults, offline state and reopen-after-unplug handled the same way.

A subclass says how to ask one sensor (`ask`, run on the port's thread) and which quantities
it has; this module does the scheduling, the journal hand-off and the bookkeeping.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from daemon.ports.errors import ConfigError, SensorError
from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext, SensorBase, SensorDriver
from drivers.sensors.serialport import PortDown, PortSettings, SerialLike, SerialLink, bus_conflicts, group_by_port

# APScheduler logs every job run at INFO; a bus polled each minute would fill the log.
for _name in ("apscheduler.executors.default", "apscheduler.scheduler"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Value:
    """One quantity as a device gave it: a number in `unit`, or None with the device's `fault`."""

    value: float | None
    unit: str = ""
    fault: str | None = None


@dataclass
class DeviceState:
    """What the bus last heard from one sensor."""

    next_due: float = 0.0
    online: bool | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    last_ok: float | None = None
    last_error: str | None = None


C = TypeVar("C", bound=PortSettings)


class SerialBusDriver(SensorDriver, Generic[C]):
    """All sensors on one serial port, polled in turn by one APScheduler job."""

    def __init__(self, sensors: Sequence[SensorBase], ctx: DriverContext, link: SerialLink | None = None) -> None:
        super().__init__(sensors, ctx)
        config = type(self).Config
        devices: list[Any] = [s for s in self.sensors if isinstance(s, config)]
        if not devices or len(devices) != len(self.sensors) or len({d.port for d in devices}) != 1:
            raise TypeError(f"{type(self).__name__} serves {config.__name__} sensors on one port")
        problems = bus_conflicts(self.type_key, devices)
        if problems:
            raise ConfigError(problems)
        self.devices: list[C] = devices
        self.port: str = devices[0].port
        settings = PortSettings.model_validate(devices[0].model_dump(include=set(PortSettings.model_fields)))
        self.link = link or SerialLink(settings, ctx.log)
        self.link.on_change = self._port_changed
        self.state = {d.id: DeviceState() for d in self.devices}  # type: ignore[attr-defined]
        self.tick: float = min(d.interval for d in self.devices)  # type: ignore[attr-defined]
        self._scheduler: AsyncIOScheduler | None = None
        self._down = asyncio.Event()

    # -- what a subclass provides

    @abc.abstractmethod
    def ask(self, port: SerialLike, dev: C) -> dict[str, Value]:
        """Ask one sensor (blocking, on the port's thread); raise SensorError for no/bad/error answers."""

    @abc.abstractmethod
    def quantities(self, dev: C) -> list[str]:
        """Quantities this sensor reports (each gets a fault sample when it cannot be read)."""

    def device_source(self, dev: C) -> str:
        """Names one sensor's device in faults and logs."""
        return self.source

    def describe_device(self, dev: C) -> dict[str, Any]:
        """Config facts shown by `describe()` for one sensor."""
        return {}

    # -- config

    @classmethod
    def group(cls, sensors: Sequence[SensorBase]) -> list[list[SensorBase]]:
        """One instance per port; sensors on one port must agree on its line settings."""
        problems = bus_conflicts(cls.type_key, list(sensors))
        if problems:
            raise ConfigError(problems)
        return group_by_port(list(sensors))

    @property
    def source(self) -> str:
        return f"{self.type_key}:{self.port}"

    # -- polling

    async def run(self) -> None:
        """Schedule the bus poll and the reopen loop; return only by raising (a bug) or cancellation."""
        loop = asyncio.get_running_loop()
        crashed: asyncio.Future[None] = loop.create_future()

        async def job() -> None:
            try:
                await self.poll()
            except asyncio.CancelledError:
                return  # the scheduler is shutting down with us; nothing to report
            except Exception as exc:  # noqa: BLE001 - a bug: hand it to the supervisor, which restarts us
                if not crashed.done():
                    crashed.set_exception(exc)

        sched = AsyncIOScheduler(event_loop=loop)
        sched.add_job(job, "interval", seconds=self.tick, id="poll", name=self.source, max_instances=1,
                      coalesce=True, misfire_grace_time=max(1, int(self.tick)), next_run_time=datetime.now(UTC))
        sched.start()
        self._scheduler = sched
        reopen = asyncio.create_task(self._reopen_loop(), name=f"{self.source} reopen")
        try:
            await crashed
        finally:
            reopen.cancel()
            sched.shutdown(wait=False)
            self._scheduler = None
            with contextlib.suppress(asyncio.CancelledError):
                await reopen

    async def poll(self) -> None:
        """Ask every sensor that is due, in turn, handing each one's samples over as it answers (committed within
        `storage.commit_interval`; the bus does not wait for the SD card)."""
        now = time.monotonic()
        slack = 0.1 * self.tick
        for dev in self.devices:
            st = self.state[dev.id]  # type: ignore[attr-defined]
            if now < st.next_due - slack:
                continue
            st.next_due = now + dev.interval  # type: ignore[attr-defined]
            samples = await self._poll_device(dev)
            self.ctx.hand_over(samples, self.source)

    async def read(self, dev: C) -> dict[str, Value]:
        """Ask one sensor on the port's thread; raises PortDown or SensorError."""
        return await self.link.run(partial(self.ask, dev=dev))

    async def _poll_device(self, dev: C) -> list[Sample]:
        sid: str = dev.id  # type: ignore[attr-defined]
        st = self.state[sid]
        try:
            values = await self.read(dev)
        except PortDown as exc:
            return self._failed(dev, f"{self.device_source(dev)}: port down ({exc.reason})")
        except SensorError as exc:
            return self._failed(dev, str(exc))
        ts = self.ctx.clock.now()
        if st.online is False:
            self.ctx.log.info("%s (sensor %s) answers again", self.device_source(dev), sid)
        st.online, st.last_ok, st.last_error = True, ts, None
        st.values = {q: v.value for q, v in values.items()}
        self.ctx.set_online(sid, True, "")
        return [Sample(sid, q, v.value, v.unit, ts, v.fault) for q, v in values.items()]

    def _failed(self, dev: C, why: str) -> list[Sample]:
        """Fault samples (a journaled gap) and offline state; logged once per outage."""
        sid: str = dev.id  # type: ignore[attr-defined]
        st = self.state[sid]
        if st.online is not False:
            self.ctx.log.warning("sensor %s: %s", sid, why)
        st.online, st.last_error = False, why
        self.ctx.set_online(sid, False, why)
        ts = self.ctx.clock.now()
        return [Sample(sid, q, None, ts=ts, fault=why) for q in self.quantities(dev)]

    def _port_changed(self, up: bool, reason: str) -> None:
        if not up:
            self._down.set()

    async def _reopen_loop(self) -> None:
        """While the port is away, retry opening it with backoff; poll at once when it is back."""
        while True:
            await self._down.wait()
            while True:
                try:
                    await self.link.reopen()
                except PortDown:
                    continue
                break
            self._down.clear()
            for st in self.state.values():
                st.next_due = 0.0
            job = self._scheduler.get_job("poll") if self._scheduler is not None else None
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    # -- installer tools

    async def probe(self, seconds: float) -> dict[str, Any]:
        """Ask each sensor once (no journal, no online state): for `coldchain doctor`."""
        out: dict[str, dict[str, Any]] = {}

        async def ask_all() -> None:
            for dev in self.devices:
                sid, src = dev.id, self.device_source(dev)  # type: ignore[attr-defined]
                try:
                    values = await self.read(dev)
                except PortDown as exc:
                    out[sid] = {"answered": False, "values": {}, "detail": f"{src}: port down ({exc.reason})"}
                except SensorError as exc:
                    out[sid] = {"answered": False, "values": {}, "detail": str(exc)}
                else:
                    faults = "; ".join(f"{q}: {v.fault}" for q, v in values.items() if v.fault)
                    out[sid] = {"answered": True, "values": {q: v.value for q, v in values.items()},
                                "detail": f"{src}: answered" + (f" ({faults})" if faults else "")}

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ask_all(), timeout=seconds)
        for dev in self.devices:
            out.setdefault(dev.id, {"answered": False, "values": {},  # type: ignore[attr-defined]
                                    "detail": f"{self.device_source(dev)}: not asked within {seconds:g} s"})
        return {"sensors": out}

    def describe(self) -> dict[str, Any]:
        first = self.devices[0]
        return {
            **super().describe(),
            "port": self.port,
            "line": f"{first.baudrate} {first.bytesize}{first.parity}{first.stopbits}",
            "bus": self.link.state,
            "bus_error": self.link.error or None,
            "interval": self.tick,
            "sensors": {
                d.id: {  # type: ignore[attr-defined]
                    **self.describe_device(d),
                    "online": self.state[d.id].online,  # type: ignore[attr-defined]
                    "values": dict(self.state[d.id].values),  # type: ignore[attr-defined]
                    "last_ok": self.state[d.id].last_ok,  # type: ignore[attr-defined]
                    "last_error": self.state[d.id].last_error,  # type: ignore[attr-defined]
                }
                for d in self.devices
            },
        }

    async def close(self) -> None:
        await self.link.close()
