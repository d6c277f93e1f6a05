"""Shelf-life estimate: storage-life text parsing and the Q10 model on hand-built histories."""

from __future__ import annotations

import pytest

from daemon.config.catalog import load_catalog
from daemon.lots.shelflife import estimate, parse_storage_life, rate
from daemon.reports.mkt import Segment

DAY = 86400.0


@pytest.mark.parametrize(("text", "days"), [
    ("2-6 weeks (cultivar, maturity, decay control)", 14),
    ("3-5 months (ethylene-free air)", 90),
    ("7-14 days", 7),
    ("about 5 days at 0 C", 5),
    ("short (about 1 week) - UNVERIFIED", 7),
    ("days (1-2 d at 4.4 C consumer; longer near 0 C)", 1),
    ("~2 weeks before ripening (up to 14 d at 12.5 C)", 14),
    ("per label", None),
    ("quality-dependent (months)", None),
])
def test_parse_storage_life_takes_the_first_figure_and_its_lower_bound(text: str, days: float | None) -> None:
    assert parse_storage_life(text) == days


def test_every_catalog_row_parses_or_says_no_estimate() -> None:
    for c in load_catalog().values():
        life = parse_storage_life(c.storage_life)
        assert life is None or life > 0, c.key


def test_q10_rate() -> None:
    assert rate(8.0, 8.0) == 1 and rate(2.0, 8.0) == 1 and rate(30.0, None) == 1
    assert rate(18.0, 8.0) == pytest.approx(2.5) and rate(28.0, 8.0) == pytest.approx(6.25)


def test_estimate_ages_fast_when_warm_and_normally_when_unknown() -> None:
    mandarin = load_catalog()["mandarin"]  # 5-8 °C, '2-6 weeks' -> 14 days
    start = 0.0
    warm = [Segment(start, start + 2 * DAY, 18.0)]  # two days 10 °C above the range: 5 days used
    sl = estimate(mandarin, [(start, start + 3 * DAY, [warm])])  # the third day has no reading: 1 day used
    assert sl is not None
    assert (sl.life_days, sl.used_days, sl.remaining_days, sl.elapsed_days) == (14, pytest.approx(6), pytest.approx(8), 3)
    assert sl.json()["estimate"] is True


def test_warmest_sensor_counts_and_life_never_goes_negative() -> None:
    mandarin = load_catalog()["mandarin"]
    cold = [Segment(0, DAY, 6.0)]
    hot = [Segment(0, DAY, 38.0)]  # 30 °C above: 15.6 days used in one day
    sl = estimate(mandarin, [(0, DAY, [cold, hot])])
    assert sl is not None and sl.used_days == pytest.approx(2.5 ** 3) and sl.remaining_days == 0
    assert estimate(load_catalog()["tea_green"], [(0, DAY, [cold])]) is None  # 'per label': no estimate
