"""The cold-room model: thermostat, heat leak, doors, defrost, failures and determinism."""

from __future__ import annotations

import itertools
import math
from typing import Any

from drivers.sensors.simulated.physics import FAULT_TEMPERATURE, MAX_STEP, ColdRoom, Report
from drivers.sensors.simulated.schema import SimulatedConfig

T0 = 1_700_000_000.0
HOUR = 3600.0
MINUTE = 60.0


def make(**options: Any) -> SimulatedConfig:
    base: dict[str, Any] = {"id": "sim-1", "zone": "room1", "type": "simulated", "setpoint": 4.0}
    return SimulatedConfig.model_validate({**base, **options})


def run(
    cfg: SimulatedConfig, hours: float, step: float = 60.0
) -> list[tuple[float, Report | None, ColdRoom]]:
    """Sample every `step` seconds; returns (elapsed, report, room) with the room after each sample."""
    room = ColdRoom(cfg)
    out = []
    for i in range(int(hours * HOUR / step) + 1):
        elapsed = i * step
        out.append((elapsed, room.sample(T0 + elapsed), room))
    return out


def series(cfg: SimulatedConfig, hours: float, step: float = 60.0) -> list[tuple[float, Report | None]]:
    return [(e, r) for e, r, _ in run(cfg, hours, step)]


def states(
    cfg: SimulatedConfig, hours: float, step: float = 60.0
) -> list[tuple[float, float, bool, bool, bool]]:
    """(elapsed, true temperature, compressor, door, defrost) on a grid, noise-free."""
    room = ColdRoom(cfg)
    out = []
    for i in range(int(hours * HOUR / step) + 1):
        room.advance(T0 + i * step)
        out.append((i * step, room.temperature, room.compressor_on, room.door_open, room.defrost_active))
    return out


def temps(rows: list[tuple[float, Report | None]]) -> list[float]:
    return [r.temperature for _, r in rows if r is not None]


# --- thermostat ---------------------------------------------------------------------------


def test_thermostat_holds_band_for_a_day() -> None:
    cfg = make(setpoint=4.0, differential=1.0)
    rows = states(cfg, 24)
    half = cfg.differential / 2
    # One sub-step of cooling or leak is the most the air can overshoot the switch points.
    margin = cfg.cooling_rate * MAX_STEP / 60 + 0.02
    assert all(cfg.setpoint - half - margin <= t <= cfg.setpoint + half + margin for _, t, *_ in rows)
    compressor = [c for _, _, c, _, _ in rows]
    switches = sum(1 for a, b in itertools.pairwise(compressor) if a != b)
    assert switches > 20, "the compressor should cycle, not sit on or off"
    reported = temps(series(cfg, 24))
    noise_margin = margin + 6 * cfg.noise
    assert all(abs(t - cfg.setpoint) <= half + noise_margin for t in reported)


def test_one_large_advance_is_sub_stepped() -> None:
    cfg = make(setpoint=2.0, start_temperature=2.0)
    room = ColdRoom(cfg)
    room.advance(T0)
    room.advance(T0 + 24 * HOUR)
    # Without sub-steps one 24 h Euler step would leave the room far outside the band.
    assert abs(room.temperature - cfg.setpoint) <= cfg.differential / 2 + 0.1


def test_pull_down_from_warm_start() -> None:
    cfg = make(setpoint=4.0, start_temperature=20.0)
    rows = states(cfg, 3)
    assert rows[1][2] is True  # compressor starts at once
    # Net pull-down is at least cooling_rate - leak at the warm start.
    net = cfg.cooling_rate - (cfg.ambient - 4.0) / (cfg.tau / 60)
    bound = (20.0 - 4.5) / net * MINUTE + MINUTE
    reached = next(e for e, t, *_ in rows if t <= 4.5)
    assert reached <= bound


# --- compressor failure -------------------------------------------------------------------


def test_compressor_failure_warms_towards_ambient() -> None:
    at = 1 * HOUR
    cfg = make(setpoint=4.0, failures=[{"kind": "compressor", "at": "1h"}])
    rows = series(cfg, 10)
    before = [r.temperature for e, r in rows if e < at and r is not None]
    assert max(before) < cfg.setpoint + 1.0

    after = [r.temperature for e, r in rows if e >= at and r is not None]
    blocks = [sum(after[i : i + 15]) / 15 for i in range(0, len(after) - 14, 15)]
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(blocks)), "smoothed T must rise"

    # T(t) = ambient - (ambient - T_fail) exp(-t/tau); the coldest T_fail gives the latest crossing.
    coldest = cfg.setpoint - cfg.differential / 2 - 0.1
    target = cfg.setpoint + 3
    bound = cfg.tau * math.log((cfg.ambient - coldest) / (cfg.ambient - target)) + cfg.interval
    crossed = next(e for e, r in rows if r is not None and r.temperature > target)
    assert at < crossed <= at + bound

    final = after[-1]
    expected = cfg.ambient - (cfg.ambient - cfg.setpoint) * math.exp(-(9 * HOUR) / cfg.tau)
    assert abs(final - expected) < 1.0
    assert final < cfg.ambient


def test_compressor_failure_until_recovers() -> None:
    cfg = make(failures=[{"kind": "compressor", "at": "1h", "until": "2h"}])
    rows = states(cfg, 6)
    assert all(not c for e, _, c, _, _ in rows if HOUR <= e < 2 * HOUR)
    peak = max(t for e, t, *_ in rows if e <= 2 * HOUR)
    assert peak > cfg.setpoint + 3
    late = [t for e, t, *_ in rows if e >= 4 * HOUR]
    assert all(abs(t - cfg.setpoint) <= cfg.differential / 2 + 0.1 for t in late)


# --- doors and defrost --------------------------------------------------------------------


def test_door_openings_warm_the_room() -> None:
    shut = make(seed=7)
    doors = make(seed=7, doors={"every": "30m", "duration": "2m", "jitter": 0.3})
    rows_shut = states(shut, 4, step=10)
    rows_doors = states(doors, 4, step=10)
    assert any(d for *_, d, _ in rows_doors), "a door should have opened"
    assert not any(d for *_, d, _ in rows_shut)
    assert max(t for _, t, *_ in rows_doors) > max(t for _, t, *_ in rows_shut) + 1.0
    mean_shut = sum(t for _, t, *_ in rows_shut) / len(rows_shut)
    mean_doors = sum(t for _, t, *_ in rows_doors) / len(rows_doors)
    assert mean_doors > mean_shut
    # The rise happens while the door is open: T at its close is above T at its opening.
    opens = [i for i in range(1, len(rows_doors)) if rows_doors[i][3] and not rows_doors[i - 1][3]]
    first = opens[0]
    close = next(i for i in range(first, len(rows_doors)) if not rows_doors[i][3])
    assert rows_doors[close][1] > rows_doors[first][1] + 1.0
    # Reported samples show it too, with the same seed's noise.
    assert max(temps(series(doors, 4))) > max(temps(series(shut, 4))) + 1.0


def test_door_schedule_follows_every_and_jitter() -> None:
    cfg = make(doors={"every": "45m", "duration": "2m", "jitter": 0.3})
    rows = states(cfg, 24, step=10)
    opens = [rows[i][0] for i in range(1, len(rows)) if rows[i][3] and not rows[i - 1][3]]
    gaps = [b - a for a, b in itertools.pairwise(opens)]
    assert len(opens) >= 20
    assert all(0.7 * 2700 - 10 <= g <= 1.3 * 2700 + 10 for g in gaps)
    assert len(set(gaps)) > 1, "jitter should vary the gaps"


def test_defrost_raises_then_recovers() -> None:
    cfg = make(defrost={"every": "3h", "duration": "20m", "heat_rate": 0.5})
    rows = states(cfg, 5.9)
    band = cfg.differential / 2 + 0.1
    before = [t for e, t, *_ in rows if e < 3 * HOUR]
    during = [(t, c, d) for e, t, c, _door, d in rows if 3 * HOUR <= e < 3 * HOUR + 20 * MINUTE]
    recovered = [t for e, t, *_ in rows if e >= 3 * HOUR + 20 * MINUTE + 90 * MINUTE]
    assert all(abs(t - cfg.setpoint) <= band for t in before)
    assert all(d and not c for _, c, d in during)
    assert max(t for t, _, _ in during) > cfg.setpoint + 3
    assert recovered and all(abs(t - cfg.setpoint) <= band for t in recovered)
    assert not any(d for e, *_, d in rows if e < 3 * HOUR)


# --- humidity -----------------------------------------------------------------------------


def test_humidity_hovers_near_mean_and_only_when_configured() -> None:
    assert all(r is not None and r.humidity is None for _, r in series(make(), 1))
    cfg = make(humidity={"mean": 85.0, "sd": 1.0})
    hums = [r.humidity for _, r in series(cfg, 24) if r is not None and r.humidity is not None]
    mean = sum(hums) / len(hums)
    assert 80.0 < mean < 86.0  # the running compressor dries the air a little
    assert max(hums) - min(hums) > 1.0, "humidity should wander"


def test_humidity_rises_with_door_and_is_clamped() -> None:
    cfg = make(humidity={"mean": 99.5, "sd": 3.0}, doors={"every": "20m", "duration": "5m"})
    rows = run(cfg, 12, step=30)
    hums = [r.humidity for _, r, _ in rows if r is not None and r.humidity is not None]
    assert all(0.0 <= h <= 100.0 for h in hums)
    assert max(hums) == 100.0

    low = make(humidity={"mean": 60.0, "sd": 0.0}, doors={"every": "1h", "duration": "10m", "jitter": 0.0})
    room = ColdRoom(low)
    values = []
    for i in range(int(1.2 * HOUR / 10)):
        room.advance(T0 + i * 10)
        values.append((i * 10, room.humidity, room.door_open))
    closed_before = [h for e, h, d in values if 40 * MINUTE <= e < HOUR and not d]
    open_end = [h for e, h, d in values if d][-1]
    assert open_end > max(closed_before) + 2.0


# --- failures of the reporting ------------------------------------------------------------


def test_stuck_repeats_last_values_and_physics_runs_on() -> None:
    hum = {"mean": 90.0, "sd": 1.0}
    cfg = make(humidity=hum, failures=[{"kind": "stuck", "at": "1h", "until": "2h"}])
    rows = series(cfg, 3)
    baseline = series(make(humidity=hum), 3)
    last_before = [r for e, r in rows if e < HOUR][-1]
    window = [r for e, r in rows if HOUR <= e < 2 * HOUR]
    assert len(window) == 60
    assert all(r == last_before for r in window)
    after = [r for e, r in rows if e >= 2 * HOUR]
    assert after[0] != last_before
    # Reporting froze, the room did not: after the window the series matches an unfailed run.
    assert after == [r for e, r in baseline if e >= 2 * HOUR]


def test_silent_emits_nothing_then_resumes() -> None:
    cfg = make(failures=[{"kind": "silent", "at": "30m", "until": "1h"}])
    rows = series(cfg, 2)
    assert all(r is None for e, r in rows if 30 * MINUTE <= e < HOUR)
    assert all(r is not None for e, r in rows if e < 30 * MINUTE or e >= HOUR)
    baseline = series(make(), 2)
    assert [r for e, r in rows if e >= HOUR] == [r for e, r in baseline if e >= HOUR]


def test_fault_values_report_85() -> None:
    cfg = make(humidity={}, failures=[{"kind": "fault_values", "at": "10m", "until": "20m"}])
    rows = series(cfg, 1)
    window = [r for e, r in rows if 10 * MINUTE <= e < 20 * MINUTE]
    assert window and all(r is not None and r.temperature == FAULT_TEMPERATURE == 85.0 for r in window)
    assert all(r is not None and r.humidity is not None and 50 < r.humidity < 100 for r in window)
    assert all(r is not None and r.temperature < 10 for e, r in rows if e < 10 * MINUTE or e >= 20 * MINUTE)


def test_active_failures_relative_to_first_advance() -> None:
    cfg = make(failures=[{"kind": "stuck", "at": "1h"}, {"kind": "compressor", "at": "2h", "until": "3h"}])
    room = ColdRoom(cfg)
    assert room.active_failures(T0 + 5 * HOUR) == []  # not started yet
    room.advance(T0)
    assert room.active_failures(T0 + 30 * MINUTE) == []
    assert room.active_failures(T0 + 2.5 * HOUR) == ["stuck", "compressor"]
    assert room.active_failures(T0 + 3 * HOUR) == ["stuck"]


# --- determinism --------------------------------------------------------------------------


def full(seed: int) -> SimulatedConfig:
    return make(seed=seed, humidity={}, doors={}, defrost={"every": "2h"})


def test_same_seed_same_series() -> None:
    assert series(full(3), 6) == series(full(3), 6)


def test_different_seed_different_series() -> None:
    a, b = series(full(3), 6), series(full(4), 6)
    assert a != b
    assert temps(a) != temps(b)
