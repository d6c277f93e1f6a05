"""Config of the simulated cold-room sensor: physics knobs, door/defrost cycles, scripted failures."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.ports.durations import Duration
from daemon.ports.sources import SensorBase

FailureKind = Literal["compressor", "stuck", "silent", "fault_values"]


class HumidityConfig(BaseModel):
    """Relative humidity around a mean; present only when the simulated sensor also reports %RH."""

    model_config = ConfigDict(extra="forbid")

    mean: float = Field(
        default=90.0, ge=0, le=100, description="mean relative humidity with the compressor off (%)"
    )
    sd: float = Field(default=1.0, ge=0, description="standard deviation of the slow humidity wander (%)")


class DoorsConfig(BaseModel):
    """Door openings, which let warm air in by shortening the heat-leak time constant."""

    model_config = ConfigDict(extra="forbid")

    every: Duration = Field(default=2700.0, gt=0, description="mean time between door openings")
    duration: Duration = Field(default=120.0, gt=0, description="how long the door stays open")
    jitter: float = Field(
        default=0.3, ge=0, lt=1, description="random spread of `every`, as a fraction (0.3 = +/-30%)"
    )
    tau_factor: float = Field(default=10.0, ge=1, description="tau is divided by this while the door is open")


class DefrostConfig(BaseModel):
    """Periodic defrost: the compressor stops and the heater warms the air."""

    model_config = ConfigDict(extra="forbid")

    every: Duration = Field(default=21600.0, gt=0, description="time between defrost starts")
    duration: Duration = Field(default=1200.0, gt=0, description="how long each defrost lasts")
    heat_rate: float = Field(default=0.5, ge=0, description="heating added during defrost (degC/min)")

    @model_validator(mode="after")
    def _fits(self) -> DefrostConfig:
        if self.duration >= self.every:
            raise ValueError("defrost duration must be shorter than defrost every")
        return self


class FailureConfig(BaseModel):
    """A scripted failure, with times counted from the driver's start, for demos and alarm tests."""

    model_config = ConfigDict(extra="forbid")

    kind: FailureKind = Field(
        description="compressor: never cools; stuck: repeats last values; silent: reports nothing; "
        "fault_values: reports 85.0 degC (DS18B20 power-on value)"
    )
    at: Duration = Field(description="when the failure starts, after the driver starts")
    until: Duration | None = Field(default=None, description="when it ends; None = never")

    @model_validator(mode="after")
    def _ordered(self) -> FailureConfig:
        if self.until is not None and self.until <= self.at:
            raise ValueError("failure until must be after at")
        return self

    def active(self, elapsed: float) -> bool:
        """Whether the failure applies `elapsed` seconds after the start."""
        return elapsed >= self.at and (self.until is None or elapsed < self.until)


class SimulatedConfig(SensorBase):
    """A sensor in a simulated cold room, for demos, tests and trying alarm rules without hardware."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["simulated"]
    setpoint: float = Field(description="thermostat setpoint (degC)")
    differential: float = Field(
        default=1.0, gt=0, description="thermostat hysteresis: on above setpoint+d/2, off below setpoint-d/2"
    )
    ambient: float = Field(default=25.0, description="temperature outside the room (degC)")
    tau: Duration = Field(default=10800.0, gt=0, description="heat-leak time constant of the closed room")
    cooling_rate: float = Field(default=0.3, gt=0, description="cooling by the running compressor (degC/min)")
    noise: float = Field(
        default=0.05, ge=0, description="standard deviation of the temperature reading noise"
    )
    start_temperature: float | None = Field(
        default=None, description="air temperature at start (degC); None = setpoint"
    )
    humidity: HumidityConfig | None = Field(
        default=None, description="report humidity too; None = no humidity"
    )
    doors: DoorsConfig | None = Field(default=None, description="door openings; None = door stays shut")
    defrost: DefrostConfig | None = Field(default=None, description="defrost cycles; None = no defrost")
    failures: list[FailureConfig] = Field(default_factory=list, description="scripted failures")
    seed: int = Field(default=0, description="random seed; the same seed gives the same series")
