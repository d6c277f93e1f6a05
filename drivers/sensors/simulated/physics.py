"""A deterministic lumped model of one cold room: heat leak, thermostat, doors, defrost, failures.

Pure (no I/O, no asyncio) so tests can run days of simulated time in milliseconds and the
same seed always gives the same series for the same sequence of calls.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from drivers.sensors.simulated.schema import HumidityConfig, SimulatedConfig

MAX_STEP = 10.0
"""Longest integration sub-step (s); keeps the thermostat overshoot below cooling_rate/6 degC."""

FAULT_TEMPERATURE = 85.0
"""What a DS18B20 reports when it has power-cycled and never converted: a classic bogus value."""

HUMIDITY_TAU = 600.0
"""Time constant (s) with which RH follows its target; the room air mixes in minutes."""

COMPRESSOR_DIP = 3.0
"""%RH the evaporator takes out of the air while the compressor runs."""

DOOR_RISE = 6.0
"""%RH that warm, moist outside air adds while the door is open."""


class Report(NamedTuple):
    """What the sensor reports at one instant, `(temperature, humidity)`; humidity None if not measured."""

    temperature: float
    humidity: float | None


class ColdRoom:
    """Air temperature and humidity of one room, integrated lazily up to the time asked for.

    Time is absolute (epoch seconds from the daemon clock); the first `advance` fixes the
    start, and scripted failures and the door/defrost schedules count from there.
    """

    def __init__(self, config: SimulatedConfig) -> None:
        self.config = config
        seed = config.seed
        # Separate streams so adding doors or sampling more often does not reshuffle the rest.
        self._door_rng = random.Random(f"{seed}:doors")
        self._humidity_rng = random.Random(f"{seed}:humidity")
        self._noise_rng = random.Random(f"{seed}:noise")
        self.start: float | None = None
        self.t: float | None = None
        self.temperature = config.setpoint if config.start_temperature is None else config.start_temperature
        self._humidity_base = config.humidity.mean if config.humidity else 0.0
        self._humidity_wander = 0.0
        self.compressor_on = False
        self.door_open = False
        self.defrost_active = False
        self._door_start = math.inf
        self._last_report: Report | None = None

    # --- time -----------------------------------------------------------------------------

    def elapsed(self, t: float) -> float:
        """Seconds since the start; 0 before the first `advance`."""
        return 0.0 if self.start is None else t - self.start

    def advance(self, to_t: float) -> None:
        """Integrate from the last time to `to_t` in equal sub-steps of at most MAX_STEP seconds."""
        if self.t is None:
            self.start = self.t = to_t
            self._door_start = self._next_door(to_t)
            self._update_modes(to_t)
            return
        span = to_t - self.t
        if span <= 0:
            return  # the clock never goes back; a repeated time is a no-op
        n = math.ceil(span / MAX_STEP)
        dt = span / n
        t0 = self.t
        for i in range(n):
            self._step(t0 + i * dt, dt)
        self.t = to_t
        self._update_modes(to_t)

    # --- physics --------------------------------------------------------------------------

    def _next_door(self, after: float) -> float:
        doors = self.config.doors
        if doors is None:
            return math.inf
        spread = self._door_rng.uniform(-doors.jitter, doors.jitter)
        return after + doors.every * (1.0 + spread)

    def _update_modes(self, t: float) -> None:
        """Door, defrost and thermostat state that holds from `t` over the next sub-step."""
        cfg = self.config
        doors = cfg.doors
        if doors is not None:
            while t >= self._door_start + doors.duration:
                self._door_start = self._next_door(self._door_start)
            self.door_open = self._door_start <= t
        elapsed = self.elapsed(t)
        defrost = cfg.defrost
        self.defrost_active = (
            defrost is not None and elapsed >= defrost.every and elapsed % defrost.every < defrost.duration
        )
        broken = any(f.kind == "compressor" and f.active(elapsed) for f in cfg.failures)
        if broken or self.defrost_active:
            self.compressor_on = False
        elif self.temperature > cfg.setpoint + cfg.differential / 2:
            self.compressor_on = True
        elif self.temperature < cfg.setpoint - cfg.differential / 2:
            self.compressor_on = False

    def _step(self, t: float, dt: float) -> None:
        """One sub-step: exact heat-leak relaxation plus constant cooling/heating rates."""
        cfg = self.config
        self._update_modes(t)
        tau = cfg.tau
        if self.door_open and cfg.doors is not None:
            tau /= cfg.doors.tau_factor
        # Exact solution of dT/dt = (ambient - T)/tau over dt: stable whatever tau and dt are.
        self.temperature = cfg.ambient + (self.temperature - cfg.ambient) * math.exp(-dt / tau)
        rate = 0.0  # degC/min
        if self.compressor_on:
            rate -= cfg.cooling_rate
        if self.defrost_active and cfg.defrost is not None:
            rate += cfg.defrost.heat_rate
        self.temperature += rate * dt / 60.0
        if cfg.humidity is not None:
            self._step_humidity(cfg.humidity, dt)

    def _step_humidity(self, hum: HumidityConfig, dt: float) -> None:
        """RH relaxes to a mode-dependent target plus an Ornstein-Uhlenbeck wander of sd `sd`."""
        target = hum.mean
        if self.compressor_on:
            target -= COMPRESSOR_DIP
        if self.door_open:
            target += DOOR_RISE
        decay = math.exp(-dt / HUMIDITY_TAU)
        self._humidity_base = target + (self._humidity_base - target) * decay
        # Exact OU update: the wander's stationary sd is `sd` whatever the step size.
        kick = hum.sd * math.sqrt(1.0 - decay * decay) * self._humidity_rng.gauss(0.0, 1.0)
        self._humidity_wander = self._humidity_wander * decay + kick

    @property
    def humidity(self) -> float:
        """Air RH (%), clamped to what RH can be; 0 when humidity is not simulated."""
        return min(100.0, max(0.0, self._humidity_base + self._humidity_wander))

    # --- reporting ------------------------------------------------------------------------

    def active_failures(self, t: float) -> list[str]:
        """Kinds of the scripted failures in force at `t` (none before the start)."""
        if self.start is None:
            return []
        elapsed = self.elapsed(t)
        return [f.kind for f in self.config.failures if f.active(elapsed)]

    def sample(self, t: float) -> Report | None:
        """What the sensor reports at `t` (advancing to it first); None while it is silent."""
        self.advance(t)
        failing = set(self.active_failures(t))
        # Draw the noise even when it is not used so failures do not reshuffle later readings.
        t_noise = self._noise_rng.gauss(0.0, self.config.noise) if self.config.noise > 0 else 0.0
        if "silent" in failing:
            return None
        if "stuck" in failing and self._last_report is not None:
            return self._last_report
        temperature = FAULT_TEMPERATURE if "fault_values" in failing else round(self.temperature + t_noise, 3)
        humidity = round(self.humidity, 2) if self.config.humidity is not None else None
        report = Report(temperature=temperature, humidity=humidity)
        self._last_report = report
        return report
