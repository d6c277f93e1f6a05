"""Plain values that flow through the daemon: readings, quantities, quality flags."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Quantity(enum.StrEnum):
    """What a reading measures; values are stored in SI-ish units (degC, %RH, %, V, dBm).

    Temperature and humidity are the room's; the others say how the device itself is (`device`): its
    battery, its radio link, a controller's defrost and alarm state. They are stored like readings, but no
    climate condition (limits, no data, stuck value) looks at them."""

    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    BATTERY = "battery"
    """State of charge as the device reports it, in %. Devices compute it from their own curve."""
    BATTERY_VOLTAGE = "battery_voltage"
    """The battery's voltage as measured by the device, in V (Ruuvi sends mV; no %-curve is assumed)."""
    SIGNAL = "signal"
    """Received signal strength at the gateway (RSSI), in dBm."""
    LINK_QUALITY = "link_quality"
    """Zigbee link quality indicator (LQI) as Zigbee2MQTT reports it, 0 ... 255, no unit."""
    DEFROST = "defrost"
    """A cold-room controller's defrost state: 1 while it defrosts, else 0 (the room warms on purpose)."""
    CONTROLLER_ALARM = "controller_alarm"
    """A cold-room controller's own alarm register, masked as its preset says: 0 = none, else its alarm bits."""

    @property
    def unit(self) -> str:
        return _UNITS[self._value_]

    @property
    def device(self) -> bool:
        """True for what the device says about itself (battery, signal), not about the room."""
        return self._value_ in DEVICE_QUANTITIES  # `_value_`, not the `value` property: ~5x faster, per reading


_UNITS = {"temperature": "°C", "humidity": "%RH", "battery": "%", "battery_voltage": "V", "signal": "dBm",
          "link_quality": "LQI", "defrost": "", "controller_alarm": ""}
DEVICE_QUANTITIES = frozenset({"battery", "battery_voltage", "signal", "link_quality", "defrost", "controller_alarm"})


class Quality(enum.IntEnum):
    """GOOD readings count for alarms and statistics; FAULT ones are kept as evidence only."""

    GOOD = 0
    FAULT = 2


class Flag(enum.IntFlag):
    """What a reading's record says about its timestamp (stored in `readings.flags`)."""

    NONE = 0
    REPLAYED = 1
    """Its time is when a broker replayed it from a session's backlog (after a restart or reconnect), not when it
    was measured: the device sent no time of its own, so the measurement happened some time before."""
    RECEIVED = 2
    """Its time is the daemon's arrival time (the device sent none), made distinct within its series."""


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
    replayed: bool = False
    """The broker delivered it from the session's backlog (queued while the daemon was away); see `Flag.REPLAYED`."""


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
    flags: Flag = Flag.NONE

    @property
    def good(self) -> bool:
        return self.quality is _GOOD and self.value is not None


_GOOD = Quality.GOOD  # a module constant: `Quality.GOOD` is a look-up through the enum class, read per reading


def _slot_builder(cls: type[Any]) -> Callable[..., Any]:
    """A maker of `cls` instances taking every field positionally, in order (no defaults), that sets the slots
    directly: what `cls(...)` makes, field for field, at half the cost.

    A frozen dataclass's generated `__init__` sets each field through `object.__setattr__`, looked up per
    field: 1-2 µs for a Sample or a Reading in Python 3.11, and the ingest path makes two of each per MQTT
    message (tests/daemon/ports/test_model_builders.py checks both give equal objects)."""
    names = [f.name for f in dataclasses.fields(cls)]
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    ns.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})  # the slots' member descriptors
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    exec(f"def build({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n", ns)  # noqa: S102 - as dataclasses does
    return ns["build"]  # type: ignore[no-any-return]


new_sample: Callable[[str, str, float | None, str, float | None, str | None, bool], Sample] = _slot_builder(Sample)
"""`Sample(sensor, quantity, value, unit, ts, fault, replayed)`, every field given: for the per-message paths."""
new_reading: Callable[[str, str, str, Quantity, float | None, float, Quality, str, int | None, Flag], Reading] = (
    _slot_builder(Reading))
"""`Reading(site, zone, sensor, quantity, value, ts, quality, note, id, flags)`, every field given: per reading."""
