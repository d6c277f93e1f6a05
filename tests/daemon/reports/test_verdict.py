"""A report never calls a period compliant that it cannot see: three-way verdict, gaps as findings."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from daemon.config.schema import AppConfig
from daemon.ports.model import Quantity, Reading
from daemon.reports.compliance import Report, compliance, to_csv, to_html
from daemon.reports.pdf import html_to_pdf
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL, make_config
from tests.daemon.test_reports import DAY0, TWO, fill
from tests.pages.test_chromium import pdf_text


def compressor_day(tmp_path: Path, text: str = MINIMAL) -> tuple[AppConfig, Report]:
    """Four readings at 6 °C in the first minutes of the day, then silence: all in range, 0.3 % complete."""
    cfg = make_config(tmp_path, text)
    j = Journal(cfg.storage.journal)
    try:
        j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 6.0, DAY0 + 60 * i) for i in range(4)])
        return cfg, compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=DAY0 + 2 * 86400, period="day")
    finally:
        j.close()


def test_silent_room_is_not_called_compliant(tmp_path: Path) -> None:
    _, r = compressor_day(tmp_path)
    assert r.verdict == "insufficient_data" and r.temperature is not None
    assert r.temperature.zone.completeness == pytest.approx(100 * 4 / 1440)
    (gap,) = r.gaps  # 4 readings held 5 min past the last: covered 00:00-00:08, then nothing
    assert (gap.sensor, gap.start, gap.end) == ("s1", DAY0 + 180 + 300, DAY0 + 86400)
    data = r.json()
    assert data["verdict"]["status"] == "insufficient_data" and data["verdict"]["min_completeness"] == 95.0
    assert data["gaps"] == [{"sensor": "s1", "start": gap.start, "end": gap.end, "minutes": 1432.0,
                             "start_local": "2025-11-20 00:08", "end_local": "2025-11-21 00:00"}]
    zh, en = to_html(r, "zh-CN"), to_html(r, "en")
    assert "期间内温度全部在范围内" not in zh and "无法判定：数据不足" in zh and 'id="gaps"' in zh
    assert "Cannot tell: insufficient data" in en and "1432" in en
    rows = list(csv.reader(io.StringIO(to_csv(r, "en").lstrip("\ufeff"))))
    assert ["gap", "sensor", "start", "end", "minutes"] in rows
    assert rows[rows.index(["gap", "sensor", "start", "end", "minutes"]) + 1] == [
        "1", "s1", "2025-11-20 00:08", "2025-11-21 00:00", "1432.0"]


def test_threshold_is_configurable(tmp_path: Path) -> None:
    _, r = compressor_day(tmp_path, MINIMAL + "reports: {min_completeness: 0.2}\n")
    assert r.verdict == "compliant" and r.min_completeness == 0.2
    assert "合格" in to_html(r, "zh-CN")


def test_a_full_day_in_range_is_compliant_and_an_excursion_is_not(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    j = Journal(cfg.storage.journal)
    try:
        j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 6.0, DAY0 + 60 * i) for i in range(1440)])
        r = compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=DAY0 + 2 * 86400)
    finally:
        j.close()
    assert (r.verdict, r.gaps) == ("compliant", [])
    cfg2 = make_config(tmp_path / "b", TWO)  # s2 reports only the morning, but 30 min above 8 °C were seen
    j2 = Journal(cfg2.storage.journal)
    try:
        fill(j2, cfg2)
        r2 = compliance(j2, cfg2, "z1", DAY0, DAY0 + 86400, now=DAY0 + 2 * 86400)
    finally:
        j2.close()
    assert r2.verdict == "not_compliant" and [g.sensor for g in r2.gaps] == ["s2"]


@pytest.mark.peer
def test_pdf_shows_the_verdict_and_the_gaps(tmp_path: Path) -> None:
    """The PDF a reviewer signs, printed by the real Chromium."""
    _, r = compressor_day(tmp_path)
    out = html_to_pdf(to_html(r, "zh-CN"), tmp_path / "r.pdf")
    text = pdf_text(out)
    assert "无法判定" in text and "数据缺口" in text and "1432" in text
    assert "期间内温度全部在范围内" not in text
