"""Plain values that flow through the daemon: readings, quantities, quality flags."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Quantity(enum.StrEnum):
    """What a reading measures; values are stored in SI-ish units (degC, %RH)."""

    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"

    @property
    def unit(self) -> str:
        return {"temperature": "°C", "humidity": "%RH"}[self.value]


class Quality(enum.IntEnum):
    """GOOD readings count for alarms and statistics; FAULT ones are kept as evidence only."""

    GOOD = 0
    FAULT = 2


@dataclass(frozen=True, slots=True)
class Sample:
    """What a driver hands to the pipeline: one raw value in the device's own unit.

    `value=None` with a `fault` text means the device answered with no usable value
    (null, nan, CRC error, missing key). `ts` is the device's own UTC epoch time when
    the driver trusts it, else None and the pipeline stamps the receive time.
    """

    sensor: str
    quantity: str
    value: float | None
    unit: str = ""
    ts: float | None = None
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One validated value in SI units with its place and UTC epoch timestamp (seconds)."""

    site: str
    zone: str
    sensor: str
    quantity: Quantity
    value: float | None
    ts: float
    quality: Quality = Quality.GOOD
    note: str = ""
    id: int | None = field(default=None, compare=False)

    @property
    def good(self) -> bool:
        return self.quality is Quality.GOOD and self.value is not None
