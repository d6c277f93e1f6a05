"""Excursion minutes inside the report period, and the alarm's whole duration beside them."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.reports.compliance import compliance
from daemon.storage.journal import Journal
from tests.conftest import make_config
from tests.daemon.test_reports import DAY0, TWO, fill


def test_open_alarm_minutes_are_clipped_to_the_day(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, TWO)
    j = Journal(cfg.storage.journal)
    fill(j, cfg)
    with j.transaction() as db:  # a compressor failure two days before the day, still open three days after it
        db.execute("INSERT INTO alerts (id, key, zone, sensor, kind, severity, state, started, fired, value,"
                   " limit_value, peak) VALUES (9, 'k9', 'z1', 's1', 'temp_high', 'warning', 'acknowledged', ?, ?,"
                   " 18.0, 8.0, 18.4)", (DAY0 - 2 * 86400, DAY0 - 2 * 86400 + 600))
    now = DAY0 + 4 * 86400
    r = compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=now, period="day")
    e = next(x for x in r.excursions if x.id == 9)
    assert e.minutes == pytest.approx(1440)
    assert e.duration_minutes == pytest.approx((now - (DAY0 - 2 * 86400)) / 60)
    assert next(x for x in r.json()["excursions"] if x["id"] == 9)["minutes"] == pytest.approx(1440)
    first = next(x for x in r.excursions if x.id == 1)  # inside the day: both the same
    assert first.minutes == first.duration_minutes == 30
