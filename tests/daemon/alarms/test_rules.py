"""Alarm rules with a controlled clock: delays, hysteresis, no data, faults, stuck values."""

from __future__ import annotations

from pathlib import Path

from daemon.alarms.rules import Rules, zone_limits
from daemon.config.catalog import load_catalog
from daemon.config.schema import AppConfig
from daemon.ports.model import Quality, Quantity, Reading
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


def test_stuck_window_restarts_after_a_silence(tmp_path: Path) -> None:
    """One 5.0, a day of silence, 5.0 again: not stuck for 1440 min; the window starts again after the gap."""
    cfg = make_config(tmp_path, MINIMAL.replace("commodity: mandarin}", "commodity: mandarin, alarms: {stuck_after: 30m}}"))
    r = Rules(cfg, T0)
    assert run(r, [(0, 5.0), (86_400, 5.0)]) == []
    ev = run(r, [(86_400 + 60 * i, 5.0) for i in range(1, 31)])
    assert ev == [("fire", "sensor_fault", 86_400 + 1800)]
    assert r.tracks["z1/s1/stuck:temperature"].started == T0 + 86_400


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
    assert run(r2, [(700, 9.5)]) == [("peak", "temp_high", 700)]  # already firing: nothing sent twice, the peak moves


def zone_cfg(tmp_path: Path, alarms: str, commodity: str = "mandarin"):  # type: ignore[no-untyped-def]
    return make_config(tmp_path, MINIMAL.replace("commodity: mandarin}", f"commodity: {commodity}, alarms: {alarms}}}"))


def test_defrost_window_holds_high_alarm_but_not_freeze(tmp_path: Path) -> None:
    # T0 = 2023-11-14 22:13:20 UTC = 06:13:20 Asia/Shanghai; defrost 06:00 for 30 min + 15 min recovery
    cfg = zone_cfg(tmp_path, "{defrost: [{start: '06:00', duration: 30m}]}")
    r = Rules(cfg, T0)
    assert r.in_defrost("z1", T0) and r.in_defrost("z1", T0 + 1800) and not r.in_defrost("z1", T0 + 2000)
    events = run(r, [(60 * i, 12.0) for i in range(30)])  # warm air inside the window: nothing
    assert events == []
    events = run(r, [(1920 + 60 * i, 12.0) for i in range(12)])  # after recovery: the normal delay starts
    assert events == [("pending", "temp_high", 1920), ("fire", "temp_high", 2520)]  # window ends at +1900 s


def test_window_crossing_midnight(tmp_path: Path) -> None:
    cfg = zone_cfg(tmp_path, "{defrost: [{start: '23:50', duration: 30m, recovery: 0}]}")
    r = Rules(cfg, T0)
    day = 86400 - (T0 + 8 * 3600) % 86400  # seconds to the next local midnight
    assert r.in_defrost("z1", T0 + day + 60) and r.in_defrost("z1", T0 + day - 300)
    assert not r.in_defrost("z1", T0 + day + 1300)


def test_maintenance_mute_cancels_pending_and_blocks_no_data(config: AppConfig) -> None:
    r = Rules(config, T0)
    assert run(r, [(0, 9.0)]) == [("pending", "temp_high", 0)]
    r.set_mutes([("z1", T0 + 60, T0 + 3600, "compressor service")])
    (ev,) = r.on_readings([temp(9.0, 120)])
    assert (ev.action, ev.detail) == ("cancel", "muted: compressor service")
    assert run(r, [(180 + 60 * i, 9.0) for i in range(20)]) == []
    assert r.tick(T0 + 3000) == []  # silent sensor during maintenance: no page
    assert [e.kind for e in r.tick(T0 + 3700)] == ["no_data"]


def test_cumulative_exposure(tmp_path: Path) -> None:
    cfg = zone_cfg(tmp_path, "{exposure: [{above: 8, total: 30m, window: 2h}]}")
    r = Rules(cfg, T0)
    # alternate 20 min above 8 (but <10 min each time the value is out: 9 min bursts) and inside
    series = []
    t = 0
    for _ in range(4):
        series += [(t + 60 * i, 8.2) for i in range(9)]
        t += 9 * 60
        series += [(t + 60 * i, 7.0) for i in range(20)]
        t += 20 * 60
    events = [e for e in run(r, series) if e[1] == "exposure"]
    assert events[0][0] == "fire"
    # fired when 30 min had accumulated: 3 bursts of 9 min + part of the 4th
    assert 3 * 29 * 60 < events[0][2] < 4 * 29 * 60
    assert not any(k == "temp_high" and a == "fire" for a, k, _ in run(r, []))


def test_exposure_ages_out_of_window(tmp_path: Path) -> None:
    cfg = zone_cfg(tmp_path, "{exposure: [{above: 8, total: 10m, window: 1h}]}")
    r = Rules(cfg, T0)
    ev = run(r, [(60 * i, 8.5) for i in range(12)])
    assert ("fire", "exposure", 600) in ev  # held above 8 since t=0: 10 min at t=600
    ev = run(r, [(720 + 60 * i, 6.0) for i in range(70)])
    assert ev[-1][:2] == ("clear", "exposure") or ("clear", "exposure") in [e[:2] for e in ev]


def test_rate_of_change_before_any_limit(tmp_path: Path) -> None:
    cfg = zone_cfg(tmp_path, "{rate: {rise_per_hour: 2.0, over: 30m}}")
    r = Rules(cfg, T0)
    climbing = [(60 * i, 5.5 + 0.05 * i) for i in range(40)]  # 3 °C/h, still below 8 °C
    ev = run(r, climbing)
    assert ev[0][:2] == ("fire", "rate") and 1440 <= ev[0][2] <= 1800
    assert all(v < 8.0 for _, v in climbing)
    steady = [(2400 + 60 * i, 7.45 + (0.02 if i % 2 else 0)) for i in range(40)]
    assert ("clear", "rate") in [e[:2] for e in run(r, steady)]


def test_plum_damage_band_from_commodity_data(tmp_path: Path) -> None:
    cfg = zone_cfg(tmp_path, "{}", commodity="plum_fresh")
    r = Rules(cfg, T0)
    assert r.limits["z1"].bands[0].low == 2.0 and r.limits["z1"].bands[0].high == 7.0
    ev = run(r, [(600 * i, 4.5) for i in range(14)])
    kinds = [(a, k) for a, k, _ in ev]
    assert ("fire", "band") in kinds and ("fire", "temp_high") in kinds
    ev = run(r, [(9000, 8.0)])  # above the band (still too warm for plums, but out of the band)
    assert ("clear", "band", 9000) not in ev  # the clear delay applies
    ev = run(r, [(9000 + 300, 8.0)])
    assert ("clear", "band", 9300) in ev


def test_box_health_fires_and_clears_once() -> None:
    cfg = make_config(Path("/tmp"))
    r = Rules(cfg, T0)
    (ev,) = r.box("disk", True, T0, "box.disk|free=50")
    assert (ev.zone, ev.kind, ev.detail) == ("_site", "box_health", "box.disk|free=50")
    assert r.box("disk", True, T0 + 60, "box.disk|free=40") == []
    assert [e.action for e in r.box("disk", False, T0 + 120, "")] == ["clear"]
