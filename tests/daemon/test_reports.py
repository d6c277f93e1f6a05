"""Compliance report from a hand-built journal: statistics, excursions, CSV, HTML, CLI."""

from __future__ import annotations

import csv
import io
import json
import re
import zoneinfo
from pathlib import Path

import pytest

from daemon.app.cli import main
from daemon.config.schema import AppConfig
from daemon.ports.model import Quantity, Reading
from daemon.reports.compliance import ReportError, _ticks, compliance, period_bounds, to_csv, to_html
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL, make_config

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
DAY0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai
TWO = MINIMAL.replace("sensors:\n", "sensors:\n  - {id: s2, zone: z1, type: simulated, setpoint: 6.5, interval: 5m}\n")


def fill(j: Journal, cfg: AppConfig) -> None:
    """s1 every minute for a day: 6 °C, but 9 °C from 10:00 for 30 min; s2 every 5 min, only the morning."""
    rows = []
    for i in range(1440):
        ts = DAY0 + i * 60
        v = 9.0 if 600 <= i < 630 else 6.0
        rows.append(Reading("t1", "z1", "s1", Quantity.TEMPERATURE, v, ts))
        if i % 10 == 0:
            rows.append(Reading("t1", "z1", "s1", Quantity.HUMIDITY, 92.0, ts))
    for i in range(0, 720, 5):
        rows.append(Reading("t1", "z1", "s2", Quantity.TEMPERATURE, 7.0, DAY0 + i * 60))
    j.readings.append(rows)
    with j.transaction() as db:
        db.execute("INSERT INTO alerts (id, key, zone, sensor, kind, severity, state, started, fired, acked, acked_by,"
                   " resolved, value, limit_value, peak) VALUES (1, 'k', 'z1', 's1', 'temp_high', 'warning',"
                   " 'resolved', ?, ?, ?, '张师傅', ?, 9.0, 8.0, 9.0)",
                   (DAY0 + 36000, DAY0 + 36600, DAY0 + 36700, DAY0 + 37800))
        db.executemany("INSERT INTO alert_events (alert_id, ts, state, who, comment) VALUES (1, ?, ?, ?, ?)",
                       [(DAY0 + 36000, "pending", "system", None), (DAY0 + 36600, "firing", "system", None),
                        (DAY0 + 36700, "acknowledged", "张师傅 (web)", "关好库门")])
        db.execute("INSERT INTO outbox (alert_id, created, contact, address, notifier, lang, text, state, sent_at)"
                   " VALUES (1, ?, 'zhang', '+8613800138000', 'out', 'zh-CN', 'x', 'sent', ?)",
                   (DAY0 + 36600, DAY0 + 36601))
        db.execute("INSERT INTO alerts (id, key, zone, kind, severity, state, started, fired, resolved)"
                   " VALUES (2, 'n', 'z1', 'no_data', 'warning', 'resolved', ?, ?, ?)",
                   (DAY0 + 50000, DAY0 + 50300, DAY0 + 51000))
        db.execute("INSERT INTO alerts (id, key, zone, kind, severity, state, started, resolved)"
                   " VALUES (3, 'c', 'z1', 'temp_high', 'warning', 'cancelled', ?, ?)", (DAY0 + 60000, DAY0 + 60060))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[AppConfig, Journal]:
    cfg = make_config(tmp_path, TWO)
    j = Journal(cfg.storage.journal)
    fill(j, cfg)
    return cfg, j


def test_day_report_numbers(setup: tuple[AppConfig, Journal]) -> None:
    cfg, j = setup
    start, end = period_bounds("day", TZ, DAY0 + 3 * 86400, day="2025-11-20")
    assert (start, end) == (DAY0, DAY0 + 86400)
    r = compliance(j, cfg, "z1", start, end, now=DAY0 + 3 * 86400, period="day")
    t = r.temperature
    assert t is not None and (t.low, t.high) == (5.0, 8.0)
    s1, s2 = t.sensors["s1"], t.sensors["s2"]
    assert (s1.count, s1.completeness, s1.minutes_above, s1.min, s1.max) == (1440, 100.0, 30, 6.0, 9.0)
    assert s2.count == 144 and s2.completeness == pytest.approx(50.0)
    assert s2.gap_minutes == pytest.approx(1440 - 740)  # the 11:55 reading holds 25 min (5 x its interval)
    assert t.zone.minutes_above == 30 and t.zone.count == 1584
    assert t.zone.completeness == pytest.approx(100 * 1584 / (1440 + 288))
    assert 6.0 < (t.zone.mkt or 0) < 9.0 and t.zone.mkt > (t.zone.mean or 0)
    assert [e.id for e in r.excursions] == [1] and [e.id for e in r.device_alarms] == [2]  # cancelled is not one
    e = r.excursions[0]
    assert e.minutes == 30 and e.acked_by == "张师傅" and e.comment == "关好库门" and e.told[0]["contact"] == "zhang"
    assert e.told[0]["delivered"] is None  # no delivery report came back
    assert r.humidity is not None and r.humidity.sensors["s1"].count == 144 and r.humidity.zone.mean == 92.0
    data = r.json()
    assert data["excursion_count"] == 1 and data["acknowledged_count"] == 1
    assert data["period"]["start_local"] == "2025-11-20 00:00" and data["mkt_method"]["dh_r_kelvin"] == 10000
    json.dumps(data, ensure_ascii=False)


def test_csv_and_html(setup: tuple[AppConfig, Journal]) -> None:
    cfg, j = setup
    r = compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=DAY0 + 86400 * 2)
    text = to_csv(r, "en")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    head = rows.index(["quantity", "sensor", "low", "high", "count", "completeness", "min", "max", "mean", "mkt",
                       "minutes_above", "minutes_below", "minutes_out", "gap_minutes"])
    zone_row = rows[head + 1]
    assert zone_row[:2] == ["temperature", "*"] and zone_row[10] == "30.0"
    exc = rows[rows.index(next(r for r in rows if r and r[0] == "excursion")) + 1]
    assert exc[0] == "1" and exc[10] == "张师傅" and exc[11] == "关好库门" and "zhang (out, sent)" in exc[8]
    page = to_html(r, "zh-CN")
    assert "冷链合规报告" in page and "平均动力学温度" in page and "关好库门" in page and "<svg" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "Cold-chain compliance report" in to_html(r, "en")


def test_periods() -> None:
    now = DAY0 + 10 * 86400
    assert period_bounds("week", TZ, now, day="2025-11-20") == (DAY0 - 3 * 86400, DAY0 + 4 * 86400)  # Mon..Sun
    a, b = period_bounds("month", TZ, now, day="2025-11-20")
    assert a == DAY0 - 19 * 86400 and b == now  # November has not ended at `now`: stop there
    assert period_bounds("custom", TZ, now, start="2025-11-20", end="2025-11-21") == (DAY0, DAY0 + 2 * 86400)
    assert period_bounds("custom", TZ, now, start="2025-11-20T08:00", end="2025-11-20T09:30+08:00") == (
        DAY0 + 8 * 3600, DAY0 + 9.5 * 3600)
    with pytest.raises(ReportError, match="not a date"):
        period_bounds("custom", TZ, now, start="yesterday", end="2025-11-21")
    with pytest.raises(ReportError, match="before it starts"):
        period_bounds("custom", TZ, now, start="2025-11-21", end="2025-11-19")


def test_unknown_zone(setup: tuple[AppConfig, Journal]) -> None:
    cfg, j = setup
    with pytest.raises(ReportError, match="unknown zone 'nope'; known: z1"):
        compliance(j, cfg, "nope", DAY0, DAY0 + 60, now=DAY0 + 60)


def test_cli_report_csv_json(setup: tuple[AppConfig, Journal], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    _, j = setup
    j.close()
    conf = tmp_path / "config.yaml"
    conf.write_text(TWO, encoding="utf-8")
    assert main(["report", "-c", str(conf), "--zone", "z1", "--from", "2025-11-20", "--to", "2025-11-20",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["temperature"]["zone"]["minutes_above"] == 30 and data["period"]["end"] == DAY0 + 86400
    out = tmp_path / "r.csv"
    assert main(["report", "-c", str(conf), "-z", "z1", "--period", "day", "--date", "2025-11-20", "-f", "csv",
                 "-o", str(out), "--lang", "en"]) == 0
    assert out.read_text(encoding="utf-8").startswith("\ufeffCold-chain compliance report")
    assert main(["report", "-c", str(conf), "-z", "zz", "--from", "2025-11-20", "--to", "2025-11-20",
                 "-f", "csv"]) == 2
    assert "unknown zone 'zz'" in capsys.readouterr().err


def test_cli_qr(tmp_path: Path) -> None:
    from daemon.lots.qr import qr_png

    out = tmp_path / "lot.png"
    assert main(["qr", "FJ-1", "--base-url", "https://trace.example.cn/", "-o", str(out)]) == 0
    assert out.read_bytes() == qr_png("https://trace.example.cn/trace/FJ-1")


def test_report_and_history_after_retention_rolled_the_day_up(setup: tuple[AppConfig, Journal]) -> None:
    """Past raw_retention only 5-minute rollups remain; the report and the chart still add up."""
    from daemon.ports.clock import ManualClock
    from daemon.ports.stats import Stats
    from daemon.reports import history
    from daemon.storage.retention import Retention

    cfg, j = setup
    before = compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=DAY0 + 200 * 86400).temperature
    j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 6.0, DAY0 + 199 * 86400)])  # retention keeps the newest
    Retention(j, ManualClock(DAY0 + 200 * 86400), Stats(), raw_retention=90 * 86400, rollup_retention=730 * 86400,
              cursors=[]).run_pass()
    assert j.read("SELECT COUNT(*) FROM readings WHERE ts_ms < ?", (int((DAY0 + 86400) * 1000),))[0][0] == 0
    after = compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=DAY0 + 200 * 86400).temperature
    assert before is not None and after is not None
    s1, s1_raw = after.sensors["s1"], before.sensors["s1"]
    assert (s1.count, s1.min, s1.max, s1.minutes_above) == (1440, 6.0, 9.0, 30)
    assert s1.mkt == pytest.approx(s1_raw.mkt, abs=0.01) and s1.mean == pytest.approx(s1_raw.mean, abs=0.01)
    assert after.zone.minutes_above == 30 and after.sensors["s2"].count == 144
    (chart,) = history.history(j, start=DAY0, end=DAY0 + 86400, sensor="s1", quantity="temperature",
                               max_points=24, offset_s=8 * 3600)
    assert chart.step == 3600 and len(chart.rows) == 24
    ten = next(r for r in chart.rows if r[0] == DAY0 + 10 * 3600)
    assert ten[1:] == (6.0, 7.5, 9.0, 60)


def test_report_counts_each_reading_once_whatever_rolls_and_retention_did(setup: tuple[AppConfig, Journal]) -> None:
    """The rollups count every reading, raw rows stay until retention: a report takes from the rollups only
    what the raw rows no longer hold, also in a 5-minute bucket that retention deleted only part of."""
    from daemon.ports.clock import ManualClock
    from daemon.ports.stats import Stats
    from daemon.reports.compliance import _samples
    from daemon.reports.mkt import Rollup
    from daemon.storage import rollups
    from daemon.storage.retention import Retention

    cfg, j = setup
    now = DAY0 + 200 * 86400

    def report():  # type: ignore[no-untyped-def]
        return compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=now).temperature

    nothing_rolled = report()
    rollups.catch_up(j)
    assert report() == nothing_rolled  # every raw row still there: the rollups add nothing
    (sid,) = j.readings.series_ids(sensor="s1", quantity="temperature")
    ((upto,),) = j.read("SELECT id FROM readings WHERE series = ? AND ts_ms = ?", (sid, int((DAY0 + 602 * 60) * 1000)))
    j.cursors.set("sink:central", upto)  # the uplink has s1 up to 10:02, in the middle of the 10:00 bucket
    j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 6.0, now - 60)])
    result = Retention(j, ManualClock(now), Stats(), raw_retention=90 * 86400, rollup_retention=730 * 86400,
                       cursors=["sink:central"]).run_pass()
    assert result.deleted > 0 and result.held > 0
    _, rolled = _samples(j, sid, DAY0, DAY0 + 86400, 300)
    assert rolled[-1] == Rollup(DAY0 + 600 * 60, 300, 3, 9.0, 9.0, 9.0)  # 10:00-10:02 deleted; 10:03, 10:04 raw
    after = report()
    assert after is not None and nothing_rolled is not None
    s1, s1_raw = after.sensors["s1"], nothing_rolled.sensors["s1"]
    assert (s1.count, s1.min, s1.max) == (s1_raw.count, s1_raw.min, s1_raw.max) == (1440, 6.0, 9.0)
    assert s1.mean == pytest.approx(s1_raw.mean, abs=0.01) and s1.mkt == pytest.approx(s1_raw.mkt, abs=0.01)
    assert after.sensors["s2"] == nothing_rolled.sensors["s2"]  # s2's rows came later: all held, all raw


def test_the_chart_has_axes_in_site_time_and_labelled_limits(setup: tuple[AppConfig, Journal]) -> None:
    cfg, j = setup
    r = compliance(j, cfg, "z1", DAY0, DAY0 + 86400, now=DAY0 + 86400 * 2)
    svg = to_html(r, "zh-CN").split('<svg', 1)[1].split("</svg>", 1)[0]
    labels = re.findall(r">([^<>]+)</text>", svg)
    assert "°C" in labels and r.tz in labels
    assert [lab for lab in labels if re.fullmatch(r"\d\d:\d\d", lab)][:2] == ["00:00", "04:00"]  # site time
    assert {f"{v:g} °C" for v in (r.temperature.low, r.temperature.high)} <= set(labels)  # type: ignore[union-attr]
    assert len([lab for lab in labels if re.fullmatch(r"-?\d+(\.\d+)?", lab)]) >= 3  # value ticks


def test_ticks_are_round_and_cover_the_range() -> None:
    assert _ticks(2.7, 9.4) == [4.0, 6.0, 8.0]
    assert _ticks(-20.0, -14.0) == [-20.0, -18.0, -16.0, -14.0]
