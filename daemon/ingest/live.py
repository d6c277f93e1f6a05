"""The live view: newest reading per sensor and quantity, and which sensors are online."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.ports.model import Reading


@dataclass
class SensorLive:
    online: bool = True
    reason: str = ""
    last: dict[str, Reading] = field(default_factory=dict)


class LiveView:
    """Updated from the pipeline's fan-out; read by the API."""

    def __init__(self) -> None:
        self.sensors: dict[str, SensorLive] = {}

    def update(self, readings: Sequence[Reading]) -> None:
        sensors = self.sensors
        for r in readings:  # every reading that arrives: no SensorLive made per reading, no enum `.value` property
            s = sensors.get(r.sensor)
            if s is None:
                s = sensors[r.sensor] = SensorLive()
            q = r.quantity._value_
            prev = s.last.get(q)
            if prev is None or r.ts >= prev.ts:
                s.last[q] = r

    def set_online(self, sensor: str, online: bool, reason: str = "") -> None:
        s = self.sensors.setdefault(sensor, SensorLive())
        s.online, s.reason = online, reason
