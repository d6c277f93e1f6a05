"""The seam between the forwarders (core) and sink drivers (InfluxDB ...).

A sink receives batches of journaled readings in journal order and either confirms
the whole batch (returns) or raises `SinkError`; the forwarder advances its durable
cursor only after a confirmed batch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from daemon.durations import Duration
from daemon.model import Reading

if TYPE_CHECKING:
    from daemon.journal import Journal, Row


class SinkBase(BaseModel):
    """Options every sink has."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="names the sink's cursor")
    type: str
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    timeout: Duration = 10.0


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


class Sink(abc.ABC):
    """Writes batches of readings to one server.

    Sinks that also keep the alarm history set `supports_events` and implement
    `write_events()`; the forwarder then sends the audit log too, from a second cursor.
    """

    Config: ClassVar[type[SinkBase]]
    type_key: ClassVar[str] = ""
    supports_events: ClassVar[bool] = False

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

    async def write_rows(self, rows: Sequence[Row], journal: Journal, prepared: object = None) -> None:
        """Optional fast path: write stored journal rows (`Journal.read_rows_after`), resolving series
        with `journal.series_key`. A sink that overrides it gets rows; the others get `write()`.
        A refusal (SinkError, not retryable) is then isolated through `write()`, reading by reading.
        `prepared` is what `prepare_rows` returned for these rows (None: make the body here)."""
        await self.write([journal.row_reading(r) for r in rows])

    def prepare_rows(self, rows: Sequence[Row], journal: Journal) -> object:
        """Optional, blocking (the forwarder calls it in a thread, for the next batch of a backlog while
        the current one is sent): the request body for `rows`, or None. Must not raise for bad content:
        return None and let `write_rows` raise it."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
