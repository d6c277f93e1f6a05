"""The device's own quantities (battery, signal): units, ranges and error values, and the hourly rate at which
they reach the journal (ingest/device.py)."""

from __future__ import annotations

import pytest

from daemon.config.schema import AppConfig
from daemon.ingest.device import DeviceRate
from daemon.ingest.validate import normalize
from daemon.ports.model import Quality, Quantity, Reading, Sample

NOW = 1_700_000_000.0


def norm(config: AppConfig, quantity: str, value: float, unit: str) -> Reading:
    return normalize(Sample("s1", quantity, value, unit), config.sensors[0], "t1", NOW)


@pytest.mark.parametrize(("quantity", "value", "unit", "stored"), [
    ("battery_voltage", 2977, "mV", 2.977),  # Ruuvi: millivolts, stored as volts
    ("battery_voltage", 5.52, "V", 5.52),  # Shelly H&T Gen3 on 4 x AA
    ("battery", 93, "%", 93.0),
    ("signal", -71, "dBm", -71.0),
    ("link_quality", 97, "", 97.0),
])
def test_device_units(config: AppConfig, quantity: str, value: float, unit: str, stored: float) -> None:
    r = norm(config, quantity, value, unit)
    assert r.quality is Quality.GOOD and r.value == pytest.approx(stored)
    assert r.quantity.device and r.quantity.unit == {"battery_voltage": "V", "battery": "%", "signal": "dBm",
                                                     "link_quality": "LQI"}[quantity]


@pytest.mark.parametrize(("quantity", "value", "unit", "why"), [
    ("signal", 127, "dBm", "known error value 127"),  # HCI: RSSI not available
    ("battery", 255, "%", "known error value 255"),
    ("battery", 130, "%", "outside physical range"),
    ("battery_voltage", 3000, "V", "outside physical range"),  # millivolts sent as volts
    ("signal", -70, "%", "unknown unit"),  # Tasmota's Wifi.RSSI is a % quality, not dBm
])
def test_device_faults_name_why(config: AppConfig, quantity: str, value: float, unit: str, why: str) -> None:
    r = norm(config, quantity, value, unit)
    assert r.quality is Quality.FAULT and why in r.note and r.value in (None, float(value))


def reading(q: Quantity, v: float | None, t: float, sensor: str = "s1") -> Reading:
    return Reading("t1", "z1", sensor, q, v, NOW + t, Quality.GOOD if v is not None else Quality.FAULT)


def test_one_an_hour_unless_it_changes() -> None:
    rate = DeviceRate()
    b = Quantity.BATTERY_VOLTAGE
    kept = [t for t, v in [(0, 2.98), (10, 2.98), (1800, 2.95), (3599, 2.91), (3600, 2.9), (3700, 2.75),
                           (3800, 2.75), (7300, 2.74)] if rate.keep(reading(b, v, t))]
    # 2.91 is 0.07 V from the kept 2.98: not yet; 2.75 is 0.15 V from 2.9: at once; then the hour again
    assert kept == [0, 3600, 3700, 7300]


def test_fault_and_back_are_kept_and_series_are_apart() -> None:
    rate = DeviceRate()
    s = Quantity.SIGNAL
    assert [rate.keep(reading(s, v, t)) for t, v in [(0, -70), (5, None), (6, None), (7, -71)]] == [
        True, True, False, True]
    assert rate.keep(reading(s, -70, 8, sensor="s2")) and rate.keep(reading(Quantity.BATTERY, 80, 9))
    assert rate.keep(reading(Quantity.TEMPERATURE, 4.0, 10)) and rate.keep(reading(Quantity.TEMPERATURE, 4.0, 11))
