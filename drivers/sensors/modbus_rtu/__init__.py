"""`type: modbus_rtu`: temperature/humidity transmitters on an RS485 bus (Modbus RTU, via minimalmodbus).

One driver instance per serial port (bus). An APScheduler job polls the bus; each device
is asked in turn on the bus's own thread, so a dead device costs one `timeout` and the
others still answer every interval. Frames and register maps: PROTOCOLS.md section 2.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import resources
from typing import Any

import minimalmodbus
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from daemon.errors import ConfigError, SensorError, SensorReportedError, SensorTimeout
from daemon.model import Sample
from daemon.sources import DriverContext, SensorBase, SensorDriver
from drivers.registry import sensor
from drivers.sensors.modbus_rtu.schema import PRESETS, ModbusRtuConfig, RegisterConfig
from drivers.sensors.serialport import (
    PortDown,
    PortSettings,
    SerialLike,
    SerialLink,
    bus_conflicts,
    group_by_port,
    open_serial,
)

__all__ = ["PRESETS", "SAMPLE_YAML", "ModbusRtuConfig", "ModbusRtuDriver", "Read", "decode", "plan_reads", "scan"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `sensors:` list item showing every option with its default."""

MAX_BLOCK = 16
"""Most registers combined into one request; transmitters answer short reads fastest."""

# APScheduler logs every job run at INFO; a bus polled each minute would fill the log.
for _name in ("apscheduler.executors.default", "apscheduler.scheduler"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Read:
    """One request on the wire: `count` registers from `start`, feeding `quantities`."""

    start: int
    count: int
    quantities: tuple[str, ...]


def plan_reads(cfg: ModbusRtuConfig) -> list[Read]:
    """Requests for one poll; adjacent registers share one request when `combine_reads` is on."""
    spans = sorted((r.number, r.number + r.words - 1, q) for q, r in cfg.registers.items())
    reads: list[list[Any]] = []
    for lo, hi, q in spans:
        last = reads[-1] if reads else None
        if cfg.combine_reads and last is not None and lo <= last[1] + 1 and max(hi, last[1]) - last[0] < MAX_BLOCK:
            last[1] = max(last[1], hi)
            last[2].append(q)
        else:
            reads.append([lo, hi, [q]])
    return [Read(lo, hi - lo + 1, tuple(qs)) for lo, hi, qs in reads]


def decode(registers: Sequence[int], reg: RegisterConfig) -> float:
    """Scaled value from the register word(s) of one quantity (first word at index 0)."""
    if reg.words == 2:
        hi, lo = (registers[0], registers[1]) if reg.word_order == "big" else (registers[1], registers[0])
        raw, bits = (hi << 16) | lo, 32
    else:
        raw, bits = registers[0], 16
    if reg.signed and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    return round(raw * reg.multiplier / reg.divisor, 6)


def transact(port: SerialLike, cfg: ModbusRtuConfig, source: str) -> dict[str, float]:
    """Poll one device (blocking, on the bus thread): its values, or SensorTimeout/SensorReportedError.

    Port failures (pyserial/OS errors) propagate so the link can mark the bus down.
    """
    instrument = minimalmodbus.Instrument(port, cfg.address)  # type: ignore[arg-type]
    port.timeout = cfg.timeout
    values: dict[str, float] = {}
    for rd in plan_reads(cfg):
        where = f"FC{cfg.function_code:02d} 0x{rd.start:04X}+{rd.count}"
        try:
            words = instrument.read_registers(rd.start, rd.count, functioncode=cfg.function_code)
        except minimalmodbus.SlaveReportedException as exc:
            raise SensorReportedError(source, f"exception response to {where}: {exc}") from exc
        except minimalmodbus.NoResponseError as exc:
            raise SensorTimeout(source, f"no answer to {where} in {cfg.timeout:g} s") from exc
        except minimalmodbus.ModbusException as exc:  # CRC error, wrong address, short frame
            raise SensorTimeout(source, f"bad answer to {where}: {exc}") from exc
        for q in rd.quantities:
            reg = cfg.registers[q]  # type: ignore[index]
            off = reg.number - rd.start
            values[q] = decode(words[off : off + reg.words], reg)
    return values


def scan(
    port: str,
    *,
    baudrate: int = 9600,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: int = 1,
    addresses: Iterable[int] = range(1, 248),
    timeout: float = 0.1,
    function_code: int = 3,
    register: int = 0,
    opener: Any = open_serial,
) -> list[int]:
    """Addresses on a bus that answer a one-register read, with data or an exception (both mean a
    device is there). Blocking, about len(addresses) x timeout: call it with asyncio.to_thread."""
    settings = PortSettings.model_validate(
        {"port": port, "baudrate": baudrate, "bytesize": bytesize, "parity": parity, "stopbits": stopbits}
    )
    ser = opener(settings)
    found = []
    try:
        ser.timeout = timeout
        for addr in addresses:
            instrument = minimalmodbus.Instrument(ser, addr)  # type: ignore[arg-type]
            try:
                instrument.read_registers(register, 1, functioncode=function_code)
            except minimalmodbus.SlaveReportedException:
                pass  # an exception response still proves a device at this address
            except minimalmodbus.ModbusException:
                continue  # silence or garbage: nobody (or a collision) there
            found.append(addr)
    finally:
        ser.close()
    return found


@dataclass
class DeviceState:
    """What the bus last heard from one device."""

    next_due: float = 0.0
    online: bool | None = None
    values: dict[str, float] = field(default_factory=dict)
    last_ok: float | None = None
    last_error: str | None = None


@sensor("modbus_rtu")
class ModbusRtuDriver(SensorDriver):
    """All devices on one RS485 port, polled in turn by one APScheduler job."""

    Config = ModbusRtuConfig
    scan = staticmethod(scan)

    def __init__(self, sensors: Sequence[SensorBase], ctx: DriverContext, link: SerialLink | None = None) -> None:
        super().__init__(sensors, ctx)
        devices = [s for s in self.sensors if isinstance(s, ModbusRtuConfig)]
        if not devices or len(devices) != len(self.sensors) or len({d.port for d in devices}) != 1:
            raise TypeError("ModbusRtuDriver serves ModbusRtuConfig sensors on one port")
        problems = bus_conflicts("modbus_rtu", devices)
        if problems:
            raise ConfigError(problems)
        self.devices = devices
        self.port = devices[0].port
        settings = PortSettings.model_validate(devices[0].model_dump(include=set(PortSettings.model_fields)))
        self.link = link or SerialLink(settings, ctx.log)
        self.link.on_change = self._port_changed
        self.state = {d.id: DeviceState() for d in devices}
        self.tick = min(d.interval for d in devices)
        self._scheduler: AsyncIOScheduler | None = None
        self._down = asyncio.Event()

    @classmethod
    def group(cls, sensors: Sequence[SensorBase]) -> list[list[SensorBase]]:
        """One instance per port; sensors on one port must agree on its line settings."""
        problems = bus_conflicts("modbus_rtu", list(sensors))
        if problems:
            raise ConfigError(problems)
        return group_by_port(list(sensors))

    @property
    def source(self) -> str:
        return f"modbus_rtu:{self.port}"

    def device_source(self, dev: ModbusRtuConfig) -> str:
        """Names one device in faults and logs: `modbus_rtu:/dev/ttyUSB0#3`."""
        return f"{self.source}#{dev.address}"

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
            except Exception as exc:  # a bug: hand it to the supervisor, which restarts us
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
        """Ask every device that is due, in turn; then wait until their samples are journaled."""
        now = time.monotonic()
        slack = 0.1 * self.tick
        emits = []
        for dev in self.devices:
            st = self.state[dev.id]
            if now < st.next_due - slack:
                continue
            st.next_due = now + dev.interval
            samples = await self._poll_device(dev)
            emits.append(asyncio.ensure_future(self.ctx.emit(samples)))
        for result in await asyncio.gather(*emits, return_exceptions=True):
            if isinstance(result, Exception):
                self.ctx.log.warning("%s: readings not journaled: %s", self.source, result)

    async def _read(self, dev: ModbusRtuConfig) -> dict[str, float]:
        return await self.link.run(partial(transact, cfg=dev, source=self.device_source(dev)))

    async def _poll_device(self, dev: ModbusRtuConfig) -> list[Sample]:
        st = self.state[dev.id]
        try:
            values = await self._read(dev)
        except PortDown as exc:
            return self._failed(dev, f"{self.device_source(dev)}: port down ({exc.reason})")
        except SensorError as exc:
            return self._failed(dev, str(exc))
        ts = self.ctx.clock.now()
        if st.online is False:
            self.ctx.log.info("%s (sensor %s) answers again", self.device_source(dev), dev.id)
        st.online, st.values, st.last_ok, st.last_error = True, values, ts, None
        self.ctx.set_online(dev.id, True, "")
        return [Sample(dev.id, q, v, dev.unit_of(q), ts) for q, v in values.items()]

    def _failed(self, dev: ModbusRtuConfig, why: str) -> list[Sample]:
        """Fault samples (a journaled gap) and offline state; logged once per outage."""
        st = self.state[dev.id]
        if st.online is not False:
            self.ctx.log.warning("sensor %s: %s", dev.id, why)
        st.online, st.last_error = False, why
        self.ctx.set_online(dev.id, False, why)
        ts = self.ctx.clock.now()
        return [Sample(dev.id, q, None, ts=ts, fault=why) for q in dev.registers]

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
            if self._scheduler is not None:
                job = self._scheduler.get_job("poll")
                for st in self.state.values():
                    st.next_due = 0.0
                if job is not None:
                    job.modify(next_run_time=datetime.now(UTC))

    # -- installer tools

    async def probe(self, seconds: float) -> dict[str, Any]:
        """Ask each device once (no journal, no online state): for `coldchain doctor`."""
        out: dict[str, dict[str, Any]] = {}

        async def ask_all() -> None:
            for dev in self.devices:
                src = self.device_source(dev)
                try:
                    values = await self._read(dev)
                except PortDown as exc:
                    out[dev.id] = {"answered": False, "values": {}, "detail": f"{src}: port down ({exc.reason})"}
                except SensorError as exc:
                    out[dev.id] = {"answered": False, "values": {}, "detail": str(exc)}
                else:
                    out[dev.id] = {"answered": True, "values": values, "detail": f"{src}: answered"}

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ask_all(), timeout=seconds)
        for dev in self.devices:
            out.setdefault(dev.id, {"answered": False, "values": {},
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
                d.id: {
                    "address": d.address,
                    "function_code": d.function_code,
                    "online": self.state[d.id].online,
                    "values": dict(self.state[d.id].values),
                    "last_ok": self.state[d.id].last_ok,
                    "last_error": self.state[d.id].last_error,
                }
                for d in self.devices
            },
        }

    async def close(self) -> None:
        await self.link.close()
