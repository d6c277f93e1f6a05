"""The precooling figures against Newton's law of cooling with a known half-cooling time.

The truth is the closed form of dT/dt = -k (T - Ta(t)) for an air Ta(t) = a + b t that may drift:
T(t) = Ta(t) - b/k + (T0 - a + b/k) e^(-k t). With b = 0, Y = e^(-k t): the half-cooling time is ln 2 / k and
the seven-eighths time three times that, whatever the start.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from daemon.reports.cooling import HALF, SEVEN_EIGHTHS, figures

Z = 45 * 60.0  # the known half-cooling time
K = math.log(2) / Z
T0, AIR = 24.0, 0.5
START = 1_800_000_000.0
STEP = 60.0


def newton(t0: float, a: float, b: float, k: float = K) -> Callable[[float], float]:
    """Pulp temperature `s` seconds after the cooling began, air a + b*s (b in °C per second)."""
    return lambda s: a + b * s - b / k + (t0 - a + b / k) * math.exp(-k * s)


def series(fn: Callable[[float], float], start: float, end: float, noise: float = 0.0,
           seed: int = 1) -> list[tuple[float, float]]:
    rnd = random.Random(seed)
    n = int((end - start) // STEP) + 1
    return [(start + i * STEP, fn(i * STEP) + (rnd.gauss(0, noise) if noise else 0.0)) for i in range(n)]


def truth_crossing(pulp: Callable[[float], float], air: Callable[[float], float], fraction: float,
                   t_from: float = 0.0) -> float:
    """Seconds (1 s grid) until (T - Ta(t)) / (T0 - Ta(t)) <= fraction, written out from the closed form."""
    t0 = pulp(t_from)
    s = t_from
    while (pulp(s) - air(s)) / (t0 - air(s)) > fraction:
        s += 1.0
    return s - t_from


def test_constant_air_with_noise_gives_the_known_half_and_seven_eighths_times() -> None:
    pulp = series(newton(T0, AIR, 0.0), START, START + 4 * Z, noise=0.1)
    air = series(lambda s: AIR, START, START + 4 * Z, noise=0.1, seed=2)
    f = figures(pulp, air, START, START + 4 * Z)
    assert f.state == "done"
    assert f.half_s == pytest.approx(Z, abs=2 * STEP)
    assert f.seven_eighths_s == pytest.approx(3 * Z, abs=3 * STEP)
    assert f.half_fit_s == pytest.approx(Z, rel=0.03)
    assert f.r2 is not None and f.r2 > 0.99


def test_the_prediction_before_seven_eighths_is_within_five_percent() -> None:
    now = START + 1.5 * Z  # Y ~ 0.35: half reached, 7/8 an hour and a half away
    pulp = series(newton(T0, AIR, 0.0), START, now, noise=0.1)
    air = series(lambda s: AIR, START, now, noise=0.1, seed=3)
    f = figures(pulp, air, START, now)
    assert f.state == "predicting"
    assert f.seven_eighths_s is None
    assert f.predicted_seven_eighths_s == pytest.approx(3 * Z, rel=0.05)
    assert f.predicted_half_s == f.half_s == pytest.approx(Z, abs=2 * STEP)
    assert f.k_per_h == pytest.approx(K * 3600, rel=0.05)


def test_a_run_started_late_still_measures_the_same_half_cooling_time() -> None:
    """The produce went into the air 40 min before staff started the run: T0 is lower, the times are the same."""
    cooling_began = START - 40 * 60
    fn = newton(T0, AIR, 0.0)
    pulp = series(fn, cooling_began, START + 4 * Z, noise=0.1)
    air = series(lambda s: AIR, cooling_began, START + 4 * Z, seed=4)
    f = figures(pulp, air, START, START + 4 * Z)
    assert f.initial_c == pytest.approx(fn(40 * 60), abs=0.4)
    assert f.half_s == pytest.approx(Z, abs=2 * STEP)
    assert f.seven_eighths_s == pytest.approx(3 * Z, abs=3 * STEP)


def test_a_fan_that_comes_on_late_is_in_the_model() -> None:
    """Run started, the air stays at the pulp's temperature for 20 min: Y waits, the fitted k does not care."""
    late = 20 * 60.0
    fn = newton(T0, AIR, 0.0)
    pulp = series(lambda s: T0 if s < late else fn(s - late), START, START + 4 * Z, noise=0.1)
    air = series(lambda s: T0 if s < late else AIR, START, START + 4 * Z, seed=5)
    f = figures(pulp, air, START, START + 4 * Z)
    assert f.half_s == pytest.approx(late + Z, abs=2 * STEP)
    assert f.half_fit_s == pytest.approx(Z, rel=0.05)


def test_a_drifting_supply_air_matches_the_closed_form() -> None:
    """The air warms 1 °C per hour (the compressor is losing): Y is measured against the air of each moment."""
    b = 1.0 / 3600
    pulp_fn, air_fn = newton(T0, AIR, b), (lambda s: AIR + b * s)
    end = START + 5 * Z
    pulp = series(pulp_fn, START, end, noise=0.1)
    air = series(air_fn, START, end, noise=0.05, seed=6)
    f = figures(pulp, air, START, end)
    assert f.half_s == pytest.approx(truth_crossing(pulp_fn, air_fn, HALF), abs=2 * STEP)
    assert f.seven_eighths_s == pytest.approx(truth_crossing(pulp_fn, air_fn, SEVEN_EIGHTHS), abs=3 * STEP)
    assert f.half_fit_s == pytest.approx(Z, rel=0.03)  # k of the law itself, not of the drifting Y
    # the drift matters: against the air of each moment, 7/8 is reached over 10 min away from the 3 Z of a steady air
    assert abs(truth_crossing(pulp_fn, air_fn, SEVEN_EIGHTHS) - 3 * Z) > 10 * 60


def test_not_enough_data_until_the_curve_says_something() -> None:
    fn = newton(T0, AIR, 0.0)
    air = series(lambda s: AIR, START, START + Z)
    f = figures(series(fn, START, START + 4 * STEP), air, START, START + 4 * STEP)
    assert (f.state, f.reason) == ("not_enough_data", "5 pulp readings, 6 needed")
    assert f.predicted_seven_eighths_s is None
    f = figures(series(fn, START, START + 8 * STEP), air, START, START + 8 * STEP)
    assert f.state == "not_enough_data"
    assert f.reason is not None and "min of curve" in f.reason
    warm = series(lambda s: T0, START, START + Z)  # in the room, but not cooling
    f = figures(warm, air, START, START + Z)
    assert (f.state, f.reason) == ("not_enough_data", "the pulp has not begun to cool")


def test_waiting_and_no_field_heat() -> None:
    air = series(lambda s: AIR, START, START + Z)
    assert figures([], air, START, START + Z).state == "waiting"
    assert figures(series(lambda s: T0, START, START + Z), [], START, START + Z).reason == "no supply-air reading yet"
    cold = series(lambda s: AIR + 1.0, START, START + Z)
    assert figures(cold, air, START, START + Z).state == "no_field_heat"


def test_a_curve_that_is_not_newtons_gives_no_prediction() -> None:
    """The pulp drops by 3 °C at once (probe moved to the box's surface) then stays: no exponential to extend."""
    pulp = series(lambda s: T0 if s < 600 else T0 - 3.0, START, START + Z, noise=0.05)
    air = series(lambda s: AIR, START, START + Z)
    f = figures(pulp, air, START, START + Z)
    assert f.state == "not_enough_data"
    assert f.predicted_seven_eighths_s is None
    assert f.reason is not None and "Newton" in f.reason


def test_one_spike_is_not_a_crossing() -> None:
    fn = newton(T0, AIR, 0.0)
    pulp = series(fn, START, START + 2 * Z)
    pulp[5] = (pulp[5][0], AIR)  # a single bad value reads as "cooled" without the median
    f = figures(pulp, series(lambda s: AIR, START, START + 2 * Z), START, START + 2 * Z)
    assert f.seven_eighths_s is None
    assert f.half_s == pytest.approx(Z, abs=STEP)
