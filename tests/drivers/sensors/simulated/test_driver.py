"""The simulated driver on the seam: registration, run loop on a ManualClock, config and sample YAML."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, cast

import pytest
import yaml
from pydantic import ValidationError

from daemon.ports.clock import ManualClock
from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext, Receipt
from drivers.registry import SENSORS
from drivers.sensors.simulated import SAMPLE_YAML, SimulatedConfig, SimulatedDriver
from drivers.sensors.simulated.schema import DefrostConfig, DoorsConfig, HumidityConfig

T0 = 1_700_000_000.0
BASE: dict[str, Any] = {"id": "sim-1", "zone": "room1", "type": "simulated", "setpoint": 4.0}


def make(**options: Any) -> SimulatedConfig:
    return SimulatedConfig.model_validate({**BASE, **options})


def context(clock: ManualClock, batches: list[list[Sample]]) -> DriverContext:
    async def emit(samples: Sequence[Sample]) -> None:
        batches.append(list(samples))

    def submit(samples: Sequence[Sample], _receipt: Receipt | None = None, /) -> asyncio.Future[None]:
        batches.append(list(samples))  # the driver hands over without waiting (a polled source)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    return DriverContext(
        clock=clock,
        emit=emit,
        set_online=lambda _sensor, _online, _why: None,
        log=logging.getLogger("test.simulated"),
        settings=cast(Any, None),
        submit=submit,
    )


async def drive(cfg: SimulatedConfig, sleeps: int) -> tuple[list[list[Sample]], SimulatedDriver, ManualClock]:
    """Run the driver as a task until it has slept `sleeps` times, then cancel it."""
    clock = ManualClock(start=T0, auto_advance=True)
    batches: list[list[Sample]] = []
    driver = SimulatedDriver([cfg], context(clock, batches))
    task = asyncio.create_task(driver.run())
    for _ in range(10_000):
        await asyncio.sleep(0)
        if clock.now() >= T0 + sleeps * cfg.interval:
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await driver.close()
    return batches, driver, clock


def test_registered_under_simulated() -> None:
    assert SENSORS["simulated"] is SimulatedDriver
    assert SimulatedDriver.Config is SimulatedConfig
    assert SimulatedDriver.type_key == "simulated"


def test_one_instance_per_sensor() -> None:
    a, b = make(id="a"), make(id="b")
    assert SimulatedDriver.group([a, b]) == [[a], [b]]


@pytest.mark.asyncio
async def test_run_emits_at_interval_with_clock_ts() -> None:
    cfg = make(interval="30s", humidity={"mean": 88.0})
    batches, driver, _ = await drive(cfg, sleeps=5)
    assert len(batches) >= 5
    for k, batch in enumerate(batches):
        ts = T0 + k * 30.0
        assert [s.quantity for s in batch] == ["temperature", "humidity"]
        assert all(s.sensor == "sim-1" and s.ts == ts and s.fault is None for s in batch)
        temp, hum = batch
        assert temp.unit == "C" and hum.unit == "%"
        assert temp.value is not None and abs(temp.value - 4.0) < 1.0
        assert hum.value is not None and 0.0 <= hum.value <= 100.0
    assert driver.room.t == T0 + (len(batches) - 1) * 30.0


@pytest.mark.asyncio
async def test_run_without_humidity_emits_temperature_only() -> None:
    batches, _, _ = await drive(make(), sleeps=3)
    assert batches and all([s.quantity for s in b] == ["temperature"] for b in batches)


@pytest.mark.asyncio
async def test_run_silent_window_skips_emits() -> None:
    cfg = make(interval=60, failures=[{"kind": "silent", "at": "2m", "until": "4m"}])
    batches, _, _ = await drive(cfg, sleeps=7)
    stamps = [b[0].ts for b in batches]
    assert stamps[:5] == [T0, T0 + 60, T0 + 240, T0 + 300, T0 + 360]


@pytest.mark.asyncio
async def test_run_fault_values() -> None:
    cfg = make(failures=[{"kind": "fault_values", "at": 0}])
    batches, _, _ = await drive(cfg, sleeps=3)
    assert batches and all(b[0].value == 85.0 for b in batches)


@pytest.mark.asyncio
async def test_describe_shows_setpoint_and_active_failures() -> None:
    cfg = make(setpoint=2.5, failures=[{"kind": "stuck", "at": "2m"}, {"kind": "silent", "at": "1h"}])
    _, driver, clock = await drive(cfg, sleeps=3)
    info = driver.describe()
    assert info["source"] == "simulated:sim-1"
    assert info["setpoint"] == 2.5
    assert info["active_failures"] == ["stuck"]
    clock.advance(3600)
    assert driver.describe()["active_failures"] == ["stuck", "silent"]


def test_driver_rejects_foreign_config() -> None:
    clock = ManualClock(start=T0, auto_advance=True)
    with pytest.raises(TypeError):
        SimulatedDriver([make(), make(id="b")], context(clock, []))


# --- config --------------------------------------------------------------------------------


def test_sample_yaml_validates_and_shows_defaults() -> None:
    items = yaml.safe_load(SAMPLE_YAML)
    assert isinstance(items, list) and len(items) == 1
    cfg = SimulatedConfig.model_validate(items[0])
    defaults = SimulatedConfig(
        id=cfg.id,
        zone=cfg.zone,
        type="simulated",
        setpoint=cfg.setpoint,
        humidity=HumidityConfig(),
        doors=DoorsConfig(),
        defrost=DefrostConfig(),
    )
    assert cfg == defaults


def test_defaults() -> None:
    cfg = make()
    assert (cfg.differential, cfg.ambient, cfg.tau, cfg.cooling_rate, cfg.noise) == (
        1.0,
        25.0,
        10800.0,
        0.3,
        0.05,
    )
    assert (
        cfg.start_temperature is None and cfg.humidity is None and cfg.doors is None and cfg.defrost is None
    )
    assert cfg.failures == [] and cfg.seed == 0
    doors, defrost = DoorsConfig(), DefrostConfig()
    assert (doors.every, doors.duration, doors.jitter) == (2700.0, 120.0, 0.3)
    assert (defrost.every, defrost.duration, defrost.heat_rate) == (21600.0, 1200.0, 0.5)
    f = make(failures=[{"kind": "silent", "at": "10m", "until": "1h"}]).failures[0]
    assert (f.at, f.until) == (600.0, 3600.0)


@pytest.mark.parametrize(
    "options",
    [
        {"tau": -5},
        {"tau": "-3h"},
        {"tau": 0},
        {"differential": 0},
        {"differential": -1},
        {"cooling_rate": 0},
        {"noise": -0.1},
        {"failures": [{"kind": "meltdown", "at": "1h"}]},
        {"failures": [{"kind": "silent", "at": "2h", "until": "1h"}]},
        {"failures": [{"kind": "silent", "at": "1h", "extra": 1}]},
        {"colour": "blue"},
        {"humidity": {"mean": 90, "sd": 1, "dewpoint": 2}},
        {"humidity": {"mean": 120}},
        {"doors": {"every": "30m", "jitter": 1.5}},
        {"defrost": {"every": "20m", "duration": "30m"}},
        {"type": "modbus"},
    ],
)
def test_invalid_options_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make(**options)


def test_setpoint_required() -> None:
    with pytest.raises(ValidationError):
        SimulatedConfig.model_validate({k: v for k, v in BASE.items() if k != "setpoint"})
