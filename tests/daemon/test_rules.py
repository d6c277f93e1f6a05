"""Alarm rules with a controlled clock: delays, hysteresis, no data, faults, stuck values."""

from __future__ import annotations

from pathlib import Path

from daemon.catalog import load_catalog
from daemon.config import AppConfig
from daemon.model import Quality, Quantity, Reading
from daemon.rules import Rules, zone_limits
from tests.conftest import MINIMAL, make_config

T0 = 1_700_000_000.0


def temp(v: float | None, t: float, q: Quality = Quality.GOOD, sensor: str = "s1") -> Reading:
    return Reading("t1", "z1", sensor, Quantity.TEMPERATURE, v, T0 + t, q, "" if q is Quality.GOOD else "bad")


def run(rules: Rules, series: list[tuple[float, float]]) -> list[tuple[str, str, float]]:
    out = []
    for t, v in series:
        out += [(e.action, e.kind, e.ts - T0) for e in rules.on_readings([temp(v, t)])]
    return out


def test_commodity_defaults() -> None:
    cat = load_catalog()
    cfg_zone = make_config(Path("/tmp")).zones[0]
    lim = zone_limits(cfg_zone, cat["mandarin"])
    assert (lim.temp_low, lim.temp_high, lim.freeze) == (5.0, 8.0, -1.1)
    assert (lim.rh_low, lim.rh_high) == (90.0, 95.0)
    tomato = zone_limits(cfg_zone, cat["tomato_mature_green"])
    assert tomato.temp_low == 12.5  # max(temp_min 12.5, chilling 10)
    frozen = zone_limits(cfg_zone, cat["meat_frozen"])
    assert frozen.temp_high == -18.0 and frozen.temp_low is None  # colder frozen goods are fine
    tea = zone_limits(cfg_zone, cat["tea_green"])
    assert tea.temp_low is None and tea.temp_high == 10.0 and tea.rh_high == 50.0 and tea.rh_low is None


def test_zone_override_beats_commodity(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL.replace(
        "commodity: mandarin}", "commodity: mandarin, alarms: {temperature: {high: 9.5, delay: 5m}}}"))
    r = Rules(cfg, T0)
    assert r.limits["z1"].temp_high == 9.5 and r.limits["z1"].temp_delay == 300
    assert r.limits["z1"].temp_low == 5.0


def test_door_opening_shorter_than_delay_pages_nobody(config: AppConfig) -> None:
    r = Rules(config, T0)
    # 6.5 -> 9.0 for 4 minutes (door), back to 6.5: pending then cancelled, no fire.
    events = run(r, [(0, 6.5), (60, 9.0), (120, 9.2), (240, 9.0), (300, 6.6), (360, 6.5)])
    assert events == [("pending", "temp_high", 60), ("cancel", "temp_high", 300)]


def test_fires_after_delay_and_clears_with_hysteresis_and_clear_delay(config: AppConfig) -> None:
    r = Rules(config, T0)
    series = [(0, 6.5)] + [(60 * i, 8.6) for i in range(1, 12)]  # out from t=60, delay 600 s
    events = run(r, series)
    assert events == [("pending", "temp_high", 60), ("fire", "temp_high", 660)]
    # 7.8 is inside the range but not by the 0.5 hysteresis: the alarm stays.
    assert run(r, [(720 + 60 * i, 7.8) for i in range(10)]) == []
    # 7.4 is inside by the hysteresis; it must hold for clear_delay (300 s).
    events = run(r, [(1400 + 60 * i, 7.4) for i in range(7)])
    assert events == [("clear", "temp_high", 1700)]


def test_value_bouncing_back_out_restarts_clear_delay(config: AppConfig) -> None:
    r = Rules(config, T0)
    run(r, [(0, 9.0), (600, 9.0)])
    assert run(r, [(700, 7.0), (800, 7.0), (900, 8.5), (1000, 7.0), (1200, 7.0)]) == []
    assert run(r, [(1300, 7.0)]) == [("clear", "temp_high", 1300)]


def test_low_and_freeze(config: AppConfig) -> None:
    r = Rules(config, T0)
    events = run(r, [(0, -2.0), (120, -2.0), (600, -2.0)])
    assert ("fire", "freeze", 120) in events  # critical: 2 min
    assert ("fire", "temp_low", 600) in events


def test_no_data_fires_after_stale_after_and_clears_on_next_reading(config: AppConfig) -> None:
    r = Rules(config, T0)  # interval 60 s -> stale after 300 s
    assert r.tick(T0 + 299) == []
    (ev,) = r.tick(T0 + 301)
    assert (ev.action, ev.kind, ev.sensor, ev.started) == ("fire", "no_data", "s1", T0)
    assert r.tick(T0 + 400) == []  # fires once
    events = r.on_readings([temp(6.5, 500)])
    assert [(e.action, e.kind) for e in events] == [("clear", "no_data")]


def test_fault_streak_then_recovery(config: AppConfig) -> None:
    r = Rules(config, T0)
    ev = []
    for i in range(4):
        ev += r.on_readings([temp(85.0, 60 * i, Quality.FAULT)])
    assert [(e.action, e.kind) for e in ev] == [("fire", "sensor_fault")]
    assert ev[0].detail.startswith("fault.values|count=3")
    ev = r.on_readings([temp(6.5, 300)])
    assert [(e.action, e.kind) for e in ev] == [("clear", "sensor_fault")]


def test_fault_values_do_not_move_thresholds(config: AppConfig) -> None:
    r = Rules(config, T0)
    events = run(r, [(0, 6.5)]) + [
        (e.action, e.kind, e.ts - T0) for i in range(20) for e in r.on_readings([temp(85.0, 60 + i * 60, Quality.FAULT)])
    ]
    assert all(k != "temp_high" for _, k, _ in events)


def test_stuck_value(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL.replace("commodity: mandarin}", "commodity: mandarin, alarms: {stuck_after: 30m}}"))
    r = Rules(cfg, T0)
    ev = run(r, [(60 * i, 6.5) for i in range(31)])
    assert ev == [("fire", "sensor_fault", 1800)]
    assert run(r, [(1900, 6.6)]) == [("clear", "sensor_fault", 1900)]


def test_late_reading_does_not_drive_alarms(config: AppConfig) -> None:
    r = Rules(config, T0)
    run(r, [(1000, 6.5)])
    # a sensor's buffer replays old out-of-range values after an outage: no pending, no fire
    assert run(r, [(100, 12.0), (200, 12.0), (900, 12.0)]) == []


def test_restore_resumes_pending_timer(config: AppConfig) -> None:
    r = Rules(config, T0)
    r.restore([("z1/s1/temp_high", "pending", T0 + 60, 9.0)])
    # the delay counts from the stored start: fires at 660 without a new 'pending'
    assert run(r, [(600, 9.0), (660, 9.0)]) == [("fire", "temp_high", 660)]
    r2 = Rules(config, T0)
    r2.restore([("z1/s1/temp_high", "firing", T0, 9.0)])
    assert run(r2, [(700, 9.5)]) == []  # already firing: nothing sent twice
