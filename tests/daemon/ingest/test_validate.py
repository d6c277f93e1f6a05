"""Error values, NaN, units and physical ranges: a bad value is a counted fault, never a temperature."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from daemon.config.schema import AppConfig
from daemon.ingest.pipeline import Pipeline
from daemon.ingest.validate import Rejected, normalize, to_si
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quality, Quantity, Sample
from daemon.ports.sources import PhysicalRange
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from daemon.storage.readings import Readings

NOW = 1_700_000_000.0


def norm(config: AppConfig, value: float | None, unit: str = "C", quantity: str = "temperature", **kw: object):
    return normalize(Sample("s1", quantity, value, unit, **kw), config.sensors[0], "t1", NOW)  # type: ignore[arg-type]


def test_good_celsius(config: AppConfig) -> None:
    r = norm(config, 4.25)
    assert r.quality is Quality.GOOD and r.value == 4.25 and r.zone == "z1" and r.ts == NOW


@pytest.mark.parametrize("value", [85.0, -127.0, 999.0, 327.67, -327.68])
def test_known_error_values_are_faults(config: AppConfig, value: float) -> None:
    r = norm(config, value)
    assert r.quality is Quality.FAULT and r.value == value and "known error value" in r.note


def test_dallas_fahrenheit_disconnected(config: AppConfig) -> None:
    assert norm(config, -196.6, "F").quality is Quality.FAULT


def test_85_fahrenheit_is_a_real_temperature(config: AppConfig) -> None:
    r = norm(config, 85.0, "F")
    assert r.quality is Quality.GOOD and r.value == pytest.approx(29.4444, abs=1e-3)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_inf(config: AppConfig, value: float) -> None:
    r = norm(config, value)
    assert r.quality is Quality.FAULT and r.value is None and "not a number" in r.note


def test_none_with_driver_fault(config: AppConfig) -> None:
    r = norm(config, None, fault="tele/room/SENSOR: Temperature is null")
    assert r.quality is Quality.FAULT and r.note == "tele/room/SENSOR: Temperature is null"


def test_non_numeric_value(config: AppConfig) -> None:
    assert norm(config, "12,5").quality is Quality.FAULT  # type: ignore[arg-type]
    assert norm(config, True).quality is Quality.FAULT  # type: ignore[arg-type]


def test_units() -> None:
    assert to_si(Quantity.TEMPERATURE, 78.8, "F") == pytest.approx(26.0)
    assert to_si(Quantity.TEMPERATURE, 273.15, "K") == pytest.approx(0.0)
    assert to_si(Quantity.TEMPERATURE, 3.0, "°C") == 3.0
    assert to_si(Quantity.HUMIDITY, 0.55, "ratio") == pytest.approx(55.0)
    with pytest.raises(ValueError, match="unknown unit"):
        to_si(Quantity.TEMPERATURE, 1.0, "%")


def test_unknown_unit_is_fault_with_raw_value(config: AppConfig) -> None:
    r = norm(config, 12.0, "bananas")
    assert r.quality is Quality.FAULT and r.value == 12.0 and "unknown unit" in r.note


def test_physical_range_default_and_override(config: AppConfig) -> None:
    assert norm(config, 71.0).quality is Quality.FAULT
    assert norm(config, 101.0, "%", "humidity").quality is Quality.FAULT
    assert norm(config, -0.1, "%", "humidity").quality is Quality.FAULT
    config.sensors[0].ranges["temperature"] = PhysicalRange(min=-10, max=10)
    assert norm(config, 11.0).quality is Quality.FAULT
    assert norm(config, 9.0).quality is Quality.GOOD


def test_error_values_override(config: AppConfig) -> None:
    config.sensors[0].error_values = {"temperature": [0.0]}
    assert norm(config, 0.0).quality is Quality.FAULT
    assert norm(config, 85.0).quality is Quality.FAULT  # outside physical range still
    assert norm(config, 50.0).quality is Quality.GOOD


def test_device_time_ahead_is_not_believed(config: AppConfig) -> None:
    r = norm(config, 4.0, ts=NOW + 3600)
    assert r.ts == NOW and "clock ahead" in r.note
    assert norm(config, 4.0, ts=NOW - 60).ts == NOW - 60


def test_unknown_quantity_rejected(config: AppConfig) -> None:
    with pytest.raises(Rejected, match="unknown quantity 'pressure'"):
        norm(config, 1000.0, "hPa", "pressure")


def test_pipeline_counts_faults_logs_once_and_journals_them(
    config: AppConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config.storage.flush_interval = 0.2  # emit() waits a window: the default before session 11, not 5 s
    async def go() -> None:
        j = Journal(tmp_path / "p.db")
        stats = Stats()
        seen: list[int] = []
        p = Pipeline(config, j, ManualClock(NOW), stats, subscribers=[lambda rs: seen.extend(r.id or 0 for r in rs)])
        runner = asyncio.create_task(p.run())
        samples = [Sample("s1", "temperature", 85.0, "C"), Sample("s1", "temperature", 4.0, "C"),
                   Sample("ghost", "temperature", 4.0, "C"), Sample("s1", "pressure", 1.0, "hPa")]
        await asyncio.wait_for(p.emit(samples), 5)
        await asyncio.wait_for(p.emit([Sample("s1", "temperature", 85.0, "C")]), 5)
        runner.cancel()
        rows = j.readings.read_after(0, 10)
        assert [(r.value, r.quality) for r in rows] == [(85.0, Quality.FAULT), (4.0, Quality.GOOD),
                                                        (85.0, Quality.FAULT)]
        assert seen == [1, 2, 3]
        assert stats.get("sensor_faults") == 2 and stats.get("samples_unknown_sensor") == 1
        assert stats.get("samples_rejected") == 1 and stats.get("readings_stored") == 3

    asyncio.run(go())
    fault_logs = [r for r in caplog.records if "known error value" in r.getMessage()]
    assert len(fault_logs) == 1 and "s1" in fault_logs[0].getMessage()
    assert any("unknown sensor 'ghost'" in r.getMessage() for r in caplog.records)


def test_pipeline_write_failure_is_not_acknowledged(config: AppConfig, tmp_path: Path) -> None:
    class Broken(Readings):
        def append_tx(self, tx, readings):  # type: ignore[no-untyped-def]
            raise OSError(28, "No space left on device")

    config.storage.flush_interval = 0.2  # emit() waits a window: the default before session 11, not 5 s
    async def go() -> None:
        stats = Stats()
        journal = Journal(tmp_path / "b.db")
        journal.readings = Broken(journal.db)
        p = Pipeline(config, journal, ManualClock(NOW), stats)
        runner = asyncio.create_task(p.run())
        with pytest.raises(OSError, match="No space"):
            await asyncio.wait_for(p.emit([Sample("s1", "temperature", 4.0, "C")]), 5)
        runner.cancel()
        assert stats.get("journal_write_errors") == 1

    asyncio.run(go())
