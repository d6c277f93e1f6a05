"""Excursion minutes inside the report period, and the alarm's whole duration beside them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from daemon.reports.compliance import compliance, to_csv
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
    row = next(x for x in csv.reader(io.StringIO(to_csv(r, "en").lstrip("\ufeff"))) if x and x[0] == "9")
    assert row[5] == "1440.0" and row[13] == str(round(e.duration_minutes, 2))
    first = next(x for x in r.excursions if x.id == 1)  # inside the day: both the same
    assert first.minutes == first.duration_minutes == 30
