"""An open alarm's peak follows the room (in steps), without a journal write per reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import Rules
from daemon.api.views import alert_json
from daemon.config.schema import AppConfig
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.ports.stats import Stats
from daemon.reports.excursions import excursions
from daemon.storage.journal import Journal

T0 = 1_700_000_000.0


def warming(rules: Rules, am: AlertManager, clock: ManualClock, minutes: int, v0: float, per_min: float) -> list[str]:
    """One reading a minute from the clock's time on, rising by `per_min`; the actions of every rule event."""
    actions: list[str] = []
    for i in range(minutes):
        clock.advance(60)
        ts = clock.now()
        evs = rules.on_readings([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, round(v0 + per_min * i, 3), ts)])
        actions += [e.action for e in evs if e.kind == "temp_high"]  # a flat 18.4 is stuck as well
        am.apply(evs)
    return actions


def test_peak_of_an_open_alarm_is_kept_current(config: AppConfig, tmp_path: Path) -> None:
    j = Journal(tmp_path / "a.db")
    clock = ManualClock(T0)
    rules, am = Rules(config, T0), AlertManager(config, j, clock, Stats())
    try:
        # the compressor fails: 8.9 °C at the fire, then +0.05 °C a minute for six hours up to 18.4 °C ...
        actions = warming(rules, am, clock, 12, 8.9, 0.0)
        assert actions == ["pending", "fire"]
        rise = warming(rules, am, clock, 191, 8.9, 0.05)
        (row,) = [a for a in j.alerts.find(open_only=True) if a.kind == "temp_high"]
        am.acknowledge(row.id, "zhang", "repair called", "web")  # acknowledged: the room keeps warming
        rise += warming(rules, am, clock, 191, 18.4, 0.0)
        (row,) = [a for a in j.alerts.find(open_only=True) if a.kind == "temp_high"]
        assert row.state == "acknowledged" and row.peak == pytest.approx(18.4)
        writes = rise.count("peak")
        assert set(rise) == {"peak"} and writes < 382 / 4  # not one per reading (39 with a 0.5 step, 300 s)
        assert alert_json(row, "en")["peak"] == pytest.approx(18.4)
        (exc,) = excursions(j, start=T0, end=T0 + 86400, now=clock.now(), product_only=True)
        assert exc.peak == pytest.approx(18.4)
    finally:
        j.close()


def test_small_moves_are_written_after_peak_every(config: AppConfig, tmp_path: Path) -> None:
    from daemon.alarms.rules import PEAK_EVERY, PEAK_STEP

    assert PEAK_STEP > 0.01 * 19  # the rise below stays under one step
    j = Journal(tmp_path / "a.db")
    clock = ManualClock(T0)
    rules, am = Rules(config, T0), AlertManager(config, j, clock, Stats())
    try:
        warming(rules, am, clock, 12, 9.0, 0.0)
        rise = warming(rules, am, clock, 20, 9.0, 0.01)  # 0.19 °C in 19 min: below the step, past PEAK_EVERY
        (row,) = [a for a in j.alerts.find(open_only=True) if a.kind == "temp_high"]
        assert rise.count("peak") >= 1 and row.peak is not None and row.peak > 9.0
        assert row.peak >= 9.19 - 0.01 * PEAK_EVERY / 60
    finally:
        j.close()
