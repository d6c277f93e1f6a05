"""The seam between the core and sensor drivers.

A driver class declares `Config` (a `SensorBase` subclass whose `type` is a Literal),
registers under that type key in `drivers.registry`, and is built with the configs of
the sensors it serves (`group()` decides which sensors share one instance, e.g. one
RS485 bus or one MQTT connection). Its `run()` hands `Sample`s over: a polled driver with
`ctx.hand_over()` (no wait: they are committed within `storage.commit_interval`, the SD card's write
window, and the rules and the live view see them at once); a driver that acknowledges its source after
the commit (MQTT QoS 1) with `ctx.submit()` and the future it returns; `ctx.emit()` waits for the commit.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from daemon.ports.broker import MqttConfig
from daemon.ports.clock import Clock
from daemon.ports.durations import Duration
from daemon.ports.model import Sample

SENSOR_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class PhysicalRange(BaseModel):
    """What the sensor can physically measure; values outside are faults, not readings."""

    model_config = ConfigDict(extra="forbid")
    min: float
    max: float


class Instrument(BaseModel):
    """What a reviewer checks about the measuring instrument (EN 12830, GB/T 31605): printed on the report."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="maker and model, e.g. Testo 184 T3")
    serial: str | None = None
    calibrated: date | None = Field(None, description="date of the last calibration")
    calibration_due: date | None = None
    accuracy: str | None = Field(None, description="stated accuracy, e.g. ±0.5 °C")
    certificate: str | None = Field(None, description="calibration certificate number")


class BatteryLow(BaseModel):
    """When the installer is told a sensor's battery is low (a device alarm, not a room alarm), early enough
    to change it before the sensor goes silent. null turns a check off."""

    model_config = ConfigDict(extra="forbid")
    percent: float | None = Field(20.0, ge=0, le=100, description="state of charge the device reports, %")
    volts: float | None = Field(
        2.5, ge=0, le=15, description="battery voltage the device measures, V; 2.5 V suits a 3 V lithium coin "
        "cell (RuuviTag CR2477) above 0 °C; set it lower for a freezer room (the voltage sags in the cold), "
        "higher for a pack (Shelly H&T Gen3: 4 x AA)",
    )


class SensorBase(BaseModel):
    """Options every sensor has, whatever its driver."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SENSOR_ID, description="unique sensor id, used in alarms and InfluxDB tags")
    zone: str = Field(description="id of the zone (cold room) this sensor measures")
    type: str
    name: str | None = None
    interval: Duration = Field(default=60.0, gt=0, description="how often the sensor reports")
    stale_after: Duration | None = Field(
        default=None, gt=0, description="no-data alarm after this long; default 5 x interval"
    )
    ranges: dict[str, PhysicalRange] = Field(
        default_factory=dict, description="override the physical range per quantity"
    )
    error_values: dict[str, list[float]] | None = Field(
        default=None, description="override the known error values per quantity"
    )
    instrument: Instrument | None = Field(default=None, description="model, serial, calibration (for reports)")
    battery_low: BatteryLow = Field(
        default_factory=BatteryLow, description="low-battery warning to the installer, for a sensor that reports "
        "its battery",
    )

    @property
    def stale_after_s(self) -> float:
        return self.stale_after if self.stale_after is not None else 5 * self.interval


Emit = Callable[[Sequence[Sample]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Receipt:
    """A small note a driver commits in the same transaction as a batch's readings, and reads back after a
    restart (`DriverContext.receipts`): what it needs to recognise a copy of that batch delivered again (MQTT:
    the packet ids of messages stored but perhaps not acknowledged when the process was killed). The receipts of
    one source committed together are stored, and read back, as one: their bodies joined in order, so a body must
    be a run of records that a join keeps apart (MQTT: 6-byte keys)."""

    source: str
    body: bytes


class Submit(Protocol):
    """Queue samples without waiting: the future completes at their journal commit (None: nothing to store).
    A `receipt` commits with them, in the same transaction."""

    def __call__(self, samples: Sequence[Sample], receipt: Receipt | None = None, /) -> asyncio.Future[None] | None:
        ...


class SiteFacts(Protocol):
    """The site, as a driver sees it."""

    @property
    def id(self) -> str: ...

    @property
    def timezone(self) -> str: ...


class StorageFacts(Protocol):
    @property
    def batch_max(self) -> int: ...


class DriverSettings(Protocol):
    """The parts of the whole config a driver may read (the app passes its `AppConfig`)."""

    @property
    def site(self) -> SiteFacts: ...

    @property
    def mqtt(self) -> MqttConfig | None: ...

    @property
    def storage(self) -> StorageFacts: ...


@dataclass
class DriverContext:
    """What the core gives a driver: time, the way in, online state, and the config."""

    clock: Clock
    emit: Emit
    set_online: Callable[[str, bool, str], None]
    log: logging.Logger
    settings: DriverSettings | None
    submit: Submit | None = None
    receipts: Callable[[str], list[bytes]] | None = None
    """The bodies of a source's newest receipts, oldest first (None: nothing is kept, e.g. the doctor)."""
    commit_now: Callable[[], None] | None = None
    """Commits what is pending at once instead of at its window's end (None: no pipeline, e.g. the doctor)."""

    def hurry(self) -> None:
        """Ask for the pending readings' commit now: a source that stops sending at a number of unacknowledged
        messages (an MQTT broker's in-flight window) must not wait out `storage.flush_interval` for its acks."""
        if self.commit_now is not None:
            self.commit_now()

    def submitter(self) -> Submit:
        """`submit`, or for a context without one (doctor, tests) emit() run as a task (receipts dropped)."""
        if self.submit is not None:
            return self.submit
        emit = self.emit

        def submit(samples: Sequence[Sample], _receipt: Receipt | None = None, /) -> asyncio.Future[None]:
            return asyncio.ensure_future(emit(samples))

        return submit

    def hand_over(self, samples: Sequence[Sample], source: str) -> None:
        """Submit a poll's samples without waiting for their commit (a polled driver: nobody resends them, so the
        commit window is what a power cut may lose of them, docs/robustness.md); a failed commit is logged
        naming `source`, as the next poll measures again."""
        fut = self.submitter()(samples)
        if fut is None:
            return
        log = self.log

        def done(f: asyncio.Future[None]) -> None:
            exc = None if f.cancelled() else f.exception()
            if exc is not None:
                log.warning("%s: readings not journaled: %s", source, exc)

        fut.add_done_callback(done)

    def recent_receipts(self, source: str) -> list[bytes]:
        return [] if self.receipts is None else self.receipts(source)


class SensorDriver(abc.ABC):
    """A running source of samples for one or more sensors."""

    Config: ClassVar[type[SensorBase]]
    type_key: ClassVar[str] = ""
    acknowledges: ClassVar[bool] = False
    """True for a driver that acknowledges its source only once the readings are committed (MQTT QoS 1): the
    source keeps what was not, so its readings may wait `storage.flush_interval`; a polled reading nobody
    resends waits at most `storage.commit_interval` (daemon/ingest/pipeline.py)."""

    def __init__(self, sensors: Sequence[SensorBase], ctx: DriverContext) -> None:
        self.sensors = list(sensors)
        self.ctx = ctx

    @classmethod
    def group(cls, sensors: Sequence[SensorBase]) -> list[list[SensorBase]]:
        """Which sensors share one driver instance; by default each has its own."""
        return [[s] for s in sensors]

    @property
    def source(self) -> str:
        """Names this instance in logs and errors, e.g. `modbus_rtu:/dev/ttyUSB0`."""
        return f"{self.type_key}:{','.join(s.id for s in self.sensors)}"

    @abc.abstractmethod
    async def run(self) -> None:
        """Produce samples until cancelled. Raise only for bugs; report device trouble as faults."""

    def quiesce(self) -> None:  # noqa: B027 - optional hook
        """Shutdown, step 1: take no new input; the core is about to commit what was submitted."""

    async def settle(self) -> None:  # noqa: B027 - optional hook
        """Shutdown, step 2, after that commit: finish what depended on it (MQTT acknowledgements)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release ports and connections; called on shutdown."""

    def describe(self) -> dict[str, Any]:
        """Facts for `doctor` and the API (port, topics ...)."""
        return {"source": self.source}
