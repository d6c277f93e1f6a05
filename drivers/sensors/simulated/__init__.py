"""`type: simulated`: a sensor in a modelled cold room, for demos, tests and alarm-rule trials.

Time comes only from `ctx.clock`, so the daemon's clock speed accelerates the room too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from typing import Any

from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext, SensorBase, SensorDriver
from drivers.registry import sensor
from drivers.sensors.simulated.physics import ColdRoom, Report
from drivers.sensors.simulated.schema import SimulatedConfig

__all__ = ["SAMPLE_YAML", "ColdRoom", "Report", "SimulatedConfig", "SimulatedDriver"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `sensors:` list item showing every option with its default."""


@sensor("simulated")
class SimulatedDriver(SensorDriver):
    """One simulated sensor per instance (default `group`): each has its own room and seed."""

    Config = SimulatedConfig

    def __init__(self, sensors: Sequence[SensorBase], ctx: DriverContext) -> None:
        super().__init__(sensors, ctx)
        if len(self.sensors) != 1 or not isinstance(self.sensors[0], SimulatedConfig):
            raise TypeError("SimulatedDriver serves exactly one SimulatedConfig")
        self.config: SimulatedConfig = self.sensors[0]
        self.room = ColdRoom(self.config)

    def _samples(self, report: Report, now: float) -> list[Sample]:
        sid = self.config.id
        out = [Sample(sensor=sid, quantity="temperature", value=report.temperature, unit="C", ts=now)]
        if report.humidity is not None:
            out.append(Sample(sensor=sid, quantity="humidity", value=report.humidity, unit="%", ts=now))
        return out

    async def run(self) -> None:
        """Report every `interval` of clock time, on a fixed grid; samples are handed over as a polled driver's
        (committed within `storage.commit_interval`)."""
        clock = self.ctx.clock
        interval = self.config.interval
        due = clock.now()
        while True:
            now = clock.now()
            report = self.room.sample(now)
            if report is not None:
                self.ctx.hand_over(self._samples(report, now), self.source)
            due += interval
            now = clock.now()
            if due < now:  # fell behind (slow journal): skip missed slots rather than burst
                due += math.ceil((now - due) / interval) * interval
            await clock.sleep(due - now)

    def describe(self) -> dict[str, Any]:
        room = self.room
        now = self.ctx.clock.now()
        return {
            **super().describe(),
            "setpoint": self.config.setpoint,
            "active_failures": room.active_failures(now),
            "temperature": None if room.t is None else round(room.temperature, 3),
            "compressor_on": room.compressor_on,
            "door_open": room.door_open,
            "defrost_active": room.defrost_active,
        }
