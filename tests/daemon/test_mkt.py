"""MKT against the USP worked example and an independent calculation; exposure and completeness by hand."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.reports.mkt import (
    Segment,
    combine,
    completeness,
    mean_kinetic,
    mean_kinetic_points,
    segments,
    summarize,
    union_seconds,
)

H = 3600.0


def test_usp_worked_example_23h_at_5_and_1h_at_25() -> None:
    segs = [Segment(0, 23 * H, 5.0), Segment(23 * H, 24 * H, 25.0)]
    assert round(mean_kinetic(segs) or 0, 2) == 7.76
    assert round(mean_kinetic_points([5.0] * 23 + [25.0]), 2) == 7.76


def test_hourly_samples_give_the_worked_example() -> None:
    samples = [(i * H, 5.0 if i < 23 else 25.0) for i in range(24)]
    s, _ = summarize(samples, 0, 24 * H, interval=H, max_hold=2 * H, low=2, high=8)
    assert round(s.mkt or 0, 2) == 7.76
    assert s.minutes_above == 60 and s.minutes_below == 0 and s.completeness == 100.0 and s.gap_minutes == 0


def _independent_mkt(values: list[float], weights: list[float]) -> float:
    """Straight from the USP formula with plain sums, in kelvin, no log-sum-exp."""
    num = sum(w * math.exp(-83.144 / (0.0083144 * (v + 273.15))) for v, w in zip(values, weights, strict=True))
    return 83.144 / 0.0083144 / -math.log(num / sum(weights)) - 273.15


def test_generated_irregular_data_matches_independent_calculation() -> None:
    rng = random.Random(7)
    t, samples = 0.0, []
    for _ in range(5000):
        samples.append((t, rng.gauss(4.0, 3.0)))
        t += rng.uniform(20, 100)  # irregular, always below max_hold
    end = samples[-1][0]  # the last reading holds for nothing
    s, _ = summarize(samples, 0, end, interval=60, max_hold=300, low=0, high=8)
    weights = [samples[i + 1][0] - samples[i][0] for i in range(len(samples) - 1)]
    assert s.mkt == pytest.approx(_independent_mkt([v for _, v in samples[:-1]], weights), abs=1e-9)
    mean = sum(v * w for (_, v), w in zip(samples, weights, strict=False)) / sum(weights)
    assert s.mean == pytest.approx(mean, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-30, 40), min_size=1, max_size=50))
def test_mkt_lies_between_mean_and_max(values: list[float]) -> None:
    segs = [Segment(i * 60.0, (i + 1) * 60.0, v) for i, v in enumerate(values)]
    m = mean_kinetic(segs)
    assert m is not None
    mean = sum(values) / len(values)
    assert mean - 1e-6 <= m <= max(values) + 1e-6
    assert m == pytest.approx(mean_kinetic_points(values), abs=1e-6)


def test_gaps_longer_than_max_hold_weigh_nothing() -> None:
    # 10 min of 4 °C readings, silence for 2 h, then 10 min of 6 °C
    samples = [(i * 60.0, 4.0) for i in range(10)] + [(7800.0 + i * 60, 6.0) for i in range(10)]
    s, segs = summarize(samples, 0, 8400, interval=60, max_hold=300, low=0, high=8)
    # nine 4 °C readings hold 1 min each, the tenth 5 min into the gap; the 6 °C ones run to the end
    assert sum(x.seconds for x in segs) == 540 + 300 + 600
    assert s.gap_minutes == pytest.approx((8400 - 1440) / 60)
    assert s.mean == pytest.approx((4 * 840 + 6 * 600) / 1440)
    assert s.count == 20 and s.completeness == pytest.approx(100 * 20 / 140)


def test_exposure_minutes_on_a_hand_built_series() -> None:
    # one reading a minute: 5 in range, 3 above 8 °C, 2 in range, 4 below 2 °C, 1 in range
    vals = [5] * 5 + [9, 10, 8.5] + [5] * 2 + [1, 0, 1.5, -1] + [5]
    samples = [(i * 60.0, float(v)) for i, v in enumerate(vals)]
    s, _ = summarize(samples, 0, len(vals) * 60.0, interval=60, max_hold=300, low=2, high=8)
    assert (s.minutes_above, s.minutes_below, s.minutes_out) == (3, 4, 7)
    assert (s.min, s.max, s.count, s.completeness) == (-1, 10, 15, 100.0)


def test_value_before_the_period_holds_into_it() -> None:
    samples = [(-120.0, 9.0), (60.0, 5.0)]
    s, _ = summarize(samples, 0, 120, interval=60, max_hold=300, low=2, high=8)
    assert s.minutes_above == 1 and s.count == 1 and s.min == 5


def test_completeness_counts_against_each_sensors_interval() -> None:
    assert completeness(1440, 0, 86400, 60) == 100.0
    assert completeness(720, 0, 86400, 60) == 50.0
    assert completeness(48, 0, 86400, 900) == 50.0
    assert completeness(2000, 0, 86400, 60) == 100.0  # duplicates never make it more than complete


def test_zone_out_of_range_is_the_union_over_sensors() -> None:
    a = summarize([(i * 60.0, 9.0 if 2 <= i < 6 else 5.0) for i in range(10)], 0, 600, interval=60, max_hold=300,
                  low=2, high=8)
    b = summarize([(i * 60.0, 9.0 if 4 <= i < 8 else 5.0) for i in range(10)], 0, 600, interval=60, max_hold=300,
                  low=2, high=8)
    z = combine([a, b], 2, 8, 600)
    assert a[0].minutes_above == 4 and b[0].minutes_above == 4 and z.minutes_above == 6
    assert z.count == 20 and z.completeness == 100.0 and z.gap_minutes == 0
    assert union_seconds([(0, 10), (5, 20), (30, 40)]) == 30
    assert segments([], 0, 10, 5) == []


def test_a_value_held_into_the_period_counts_in_min_and_max_as_it_does_in_the_mean() -> None:
    """The last reading before the period holds until the first one inside: mean, min and max agree on it."""
    from daemon.reports.mkt import summarize

    samples = [(-30.0, 6.60), (0.0, 6.675), (60.0, 6.69)]  # a reading at the start: the one before holds no time
    late = [(-30.0, 6.60), (30.0, 6.675), (90.0, 6.69)]     # here it holds over [0, 30 s)
    for s in (samples, late):
        summary, _ = summarize(s, 0.0, 120.0, interval=60.0, max_hold=300.0, low=None, high=None)
        assert summary.min is not None and summary.max is not None and summary.mean is not None
        assert summary.min <= summary.mean <= summary.max, summary
    summary, _ = summarize(late, 0.0, 120.0, interval=60.0, max_hold=300.0, low=None, high=None)
    assert summary.min == 6.60
