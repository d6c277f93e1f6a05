"""The signed report's data and hash, its JSON copy and `coldchain report --verify` on it (no Chromium here;
the PDF itself: tests/pages/test_signed_report.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.app.cli import main
from daemon.ports.model import Quantity, Reading
from daemon.reports.compliance import compliance
from daemon.reports.pdf_doc import digest, limit_sources, signed_data, signed_html
from daemon.storage.journal import Journal
from tests.conftest import make_config
from tests.daemon.reports.signed_fixture import CONFIG, DAY0, fill


def test_limits_name_their_source_and_the_unverified_catalog_row(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, CONFIG)
    by = {x["limit"]: x for x in limit_sources(cfg, "z1")}
    assert by["temp_high"]["value"] == 9.0 and by["temp_high"]["source"] == "room"
    assert by["temp_low"]["source"] == "catalog" and not by["temp_high"]["unverified"]
    assert by["freeze"]["value"] == -1.1 and by["freeze"]["unverified"]  # the mandarin row says UNVERIFIED
    assert "UC Davis" in by["temp_low"]["catalog_source"]


def test_signed_data_leaves_out_steps_after_it_was_made(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, CONFIG)
    fill(cfg.storage.journal, cfg)
    j = Journal(cfg.storage.journal)
    end = DAY0 + 86400
    closed_at = j.alerts.find()[0].closed
    assert closed_at is not None
    before = signed_data(compliance(j, cfg, "z1", DAY0, end, closed_at - 60), cfg)
    after = signed_data(compliance(j, cfg, "z1", DAY0, end, closed_at + 60), cfg)
    (x,) = before["excursions"]
    assert x["closed"] is None and x["acked_by"] == "zhang" and x["corrective"][0]["kind"] == "moved"
    assert after["excursions"][0]["closed_by"] == "wang"
    again = signed_data(compliance(j, cfg, "z1", DAY0, end, closed_at - 60), cfg)
    assert digest(before) == digest(again) != digest(after)
    (s1, s2) = before["sensors"]
    assert (s1["model"], s1["serial"], s1["calibrated"], s1["accuracy"]) == (
        "Testo 184 T3", "SN-40917", "2025-03-01", "±0.5 °C")
    assert s2["model"] is None and s2["interval_s"] == 300
    page = signed_html(compliance(j, cfg, "z1", DAY0, end, end + 7200), cfg, "en")
    assert "not recorded" in page and "UNVERIFIED in the catalog" in page and "Reviewed" in page
    assert "counter(page)" in page and "Moved to another room".lower() in page.lower()
    j.close()


def test_verify_a_json_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path, CONFIG)
    fill(cfg.storage.journal, cfg)
    conf = tmp_path / "config.yaml"
    conf.write_text(CONFIG, encoding="utf-8")
    copy = tmp_path / "r.json"
    assert main(["report", "-c", str(conf), "-z", "z1", "--from", "2025-11-20", "--to", "2025-11-20",
                 "-f", "json", "-o", str(copy)]) == 0
    doc = json.loads(copy.read_text(encoding="utf-8"))
    assert doc["signed"]["sha256"] == digest(doc["signed"]["data"])
    capsys.readouterr()
    assert main(["report", "-c", str(conf), "--verify", str(copy)]) == 0
    assert "OK, matches the journal" in capsys.readouterr().out
    doc["signed"]["data"]["temperature"]["zone"]["max"] = 8.0  # someone edits the copy
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["report", "-c", str(conf), "--verify", str(edited)]) == 1
    assert "MODIFIED" in capsys.readouterr().err
    j = Journal(cfg.storage.journal)  # the journal changes under the copy: one more reading in the period
    j.readings.append([Reading("t1", "z1", "s2", Quantity.TEMPERATURE, 12.0, DAY0 + 3600 + 30)])
    j.close()
    assert main(["report", "-c", str(conf), "--verify", str(copy)]) == 1
    assert "DOES NOT MATCH the journal" in capsys.readouterr().err
    assert main(["report", "-c", str(conf), "--verify", str(conf)]) == 2
