"""The seam between the forwarders (core) and sink drivers (InfluxDB ...).

A sink receives batches of journaled readings in journal order and either confirms
the whole batch (returns) or raises `SinkError`; the forwarder advances its durable
cursor only over batches confirmed in journal order. A sink may let the forwarder have
`max_in_flight` batches on the wire at once; each is still confirmed or refused whole.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from daemon.ports.durations import Duration
from daemon.ports.model import Reading

Row = tuple[int, int, int, float | None, int, str | None, int | None]
"""A readings row as stored: (id, ts_ms, series, value, quality, note, flags); flags as `model.Flag` or None."""


class JournalReader(Protocol):
    """What a sink may read of the journal: readings after a cursor, as Readings, rows or values."""

    def read_after(self, last_id: int, limit: int) -> list[Reading]: ...

    def read_rows_after(self, last_id: int, limit: int) -> list[Row]: ...

    def read_values_after(self, last_id: int, limit: int) -> tuple[int, list[tuple[int, int, float | None]]]: ...

    def series_key(self, sid: int) -> tuple[str, str, str, str]: ...

    def row_reading(self, row: Row) -> Reading: ...


class SinkBase(BaseModel):
    """Options every sink has."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="names the sink's cursor")
    type: str
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    timeout: Duration = 10.0


@dataclass(frozen=True, slots=True)
class Batch:
    """The journal's readings with after < id <= last (`count` of them), as the sink will send them."""

    after: int
    last: int
    count: int
    payload: object  # what `Sink.prepare` made: the Readings by default, or a request body


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One entry of the alarm audit log (firing, escalated, acknowledged, resolved ...) for a sink."""

    id: int
    alert_id: int
    ts: float
    state: str
    who: str
    comment: str | None
    site: str
    zone: str
    sensor: str | None
    kind: str
    severity: str
    value: float | None
    limit: float | None
    text: str | None = None  # one line for people (the site's language), filled by the forwarder
    uid: str | None = None  # the alarm's id outside the box (kept in the journal; a restore does not reuse it)


@dataclass(frozen=True, slots=True)
class LotEpcisEvent:
    """One lot event as an EPCIS 2.0 event (JSON-LD object with its own @context), for sinks that uplink them.
    `id` is the journal id (the `epcis:<sink>` cursor); `body["eventID"]` stays the same on every resend."""

    id: int
    lot: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RoomInfo:
    zone: str
    name: str
    capacity: tuple[float, str] | None  # (value, unit: t | pallets | m3)
    commodity: str | None


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """What a regional hub learns of the site: its name, time zone, place and rooms."""

    site: str
    name: str
    timezone: str
    location: tuple[float, float] | None  # (lat, lon)
    rooms: tuple[RoomInfo, ...]
    kind: str = "center"  # or "vehicle": a reefer truck or insulated box, its rooms the compartments


class Sink(abc.ABC):
    """Writes batches of readings to one server.

    Sinks that also keep the alarm history set `supports_events` and implement
    `write_events()`; the forwarder then sends the audit log too, from a second cursor. Sinks that
    uplink lot events set `supports_epcis` and implement `write_epcis()` (a third cursor).
    """

    Config: ClassVar[type[SinkBase]]
    type_key: ClassVar[str] = ""
    supports_events: ClassVar[bool] = False
    supports_epcis: ClassVar[bool] = False  # lot events as EPCIS 2.0, from a third cursor (`epcis:<id>`)
    max_in_flight: ClassVar[int] = 1  # batches the forwarder may have on the wire at once

    def __init__(self, config: SinkBase, commodities: dict[str, str]) -> None:
        self.config = config
        self.commodities = commodities  # zone id -> commodity key, for the `commodity` tag

    @property
    def source(self) -> str:
        return f"{self.type_key}:{self.config.id}"

    @abc.abstractmethod
    async def write(self, readings: Sequence[Reading]) -> None:
        """Write all of `readings` or raise SinkError."""

    async def write_events(self, events: Sequence[AlarmEvent]) -> None:
        """Write all of `events` or raise SinkError (only called when `supports_events`)."""
        raise NotImplementedError(f"{self.source} does not keep alarm events")

    async def write_epcis(self, events: Sequence[LotEpcisEvent]) -> None:
        """Write all of `events` or raise SinkError (only called when `supports_epcis`)."""
        raise NotImplementedError(f"{self.source} does not keep lot events")

    def describe(self, site: SiteInfo) -> None:  # noqa: B027 - optional hook
        """The site this sink speaks for (before the first write); a sink that announces it keeps it."""

    def prepare(self, journal: JournalReader, after: int, limit: int) -> Batch | None:
        """Blocking (the forwarder calls it in a thread; during a backlog, while the previous batch is on
        the wire): the next `limit` readings after id `after`, ready to send, or None if there are none.
        The default reads Readings for `write()`. A sink that makes its request body here keeps only the
        body, and must not raise for bad content: it keeps the SinkError as the payload and raises it
        from `write_batch`, where the forwarder isolates the refused reading through `write()`."""
        readings = journal.read_after(after, limit)
        if not readings:
            return None
        return Batch(after, int(readings[-1].id or 0), len(readings), readings)

    async def write_batch(self, batch: Batch) -> None:
        """Write a prepared batch whole or raise SinkError (as `write()`)."""
        await self.write(batch.payload)  # type: ignore[arg-type]

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
