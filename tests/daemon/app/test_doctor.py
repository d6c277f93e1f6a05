"""`coldchain doctor` reports each check in a line a person understands, and fails when it must."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.app.cli import main
from tests.conftest import MINIMAL


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_doctor_all_good_sends_test_sms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, MINIMAL.replace("setpoint: 6.5}", "setpoint: 6.5, interval: 1s}"))
    rc = main(["doctor", "--config", str(cfg), "--seconds", "1.5", "--send-test-sms", "+8613800138000", "--lang", "en"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "✓ sensor s1 (Room 1) answered: temperature" in out
    assert "SMS to doctor <+8613800138000>: [Cold-chain] 测试冷库 test message" in out
    assert "✓ test SMS sent to +8613800138000 via out" in out
    assert not (tmp_path / "journal.db").exists()  # the check does not create the journal


def test_doctor_reports_silent_sensor_and_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, MINIMAL.replace("setpoint: 6.5}", "setpoint: 6.5, interval: 1s, failures: [{kind: silent, at: 0}]}"))
    rc = main(["doctor", "--config", str(cfg), "--seconds", "1"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "✗ 传感器 s1（1号库）无应答" in out and "发现1个问题" in out


def test_doctor_unwritable_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, MINIMAL.replace("journal: journal.db", "journal: /proc/nope/journal.db")
                .replace("setpoint: 6.5}", "setpoint: 6.5, interval: 1s}"))
    rc = main(["doctor", "--config", str(cfg), "--seconds", "1", "--lang", "en"])
    out = capsys.readouterr().out
    assert rc == 1 and "✗ journal /proc/nope/journal.db: cannot write" in out


def test_port_present_but_not_openable_names_the_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service user outside `dialout`: doctor (run as that user) says which group to join."""
    from types import SimpleNamespace
    from typing import Any, cast

    from daemon.app import doctor

    port = tmp_path / "ttyUSB0"
    port.write_text("")
    cfg = cast(Any, SimpleNamespace(sensors=[SimpleNamespace(port=str(port)), SimpleNamespace(port=str(port))]))
    rep = doctor.Report("en")
    monkeypatch.setattr(doctor.os, "access", lambda path, mode: False)  # root may open anything; the service user may not
    monkeypatch.setattr(doctor.getpass, "getuser", lambda: "coldchain")
    doctor.check_ports(cfg, rep)
    assert rep.lines == [("fail", f"serial port {port} is there but user coldchain may not open it: add it to the "
                                  "dialout group (sudo usermod -a -G dialout coldchain), then restart the service")]
    monkeypatch.undo()
    rep = doctor.Report("en")
    doctor.check_ports(cfg, rep)
    assert rep.lines == [("ok", f"serial port {port} present")]


def test_a_journal_in_old_pages_gets_a_note_on_compact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal made before the 1 KiB pages keeps its 4 KiB ones: doctor says so and names the command."""
    from daemon.app import doctor
    from daemon.storage import db as db_mod
    from daemon.storage.journal import Journal
    from tests.conftest import make_config

    cfg = make_config(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(db_mod, "PAGE_SIZE", 4096)
        Journal(cfg.storage.journal).close()
    rep = doctor.Report("en")
    doctor.check_journal(cfg, rep)
    assert [lvl for lvl, _ in rep.lines][:2] == ["warn", "ok"]
    assert f"pages of 4096 B (new journals: {db_mod.PAGE_SIZE} B): `coldchain journal compact`" in rep.lines[0][1]
    assert rep.problems == 0
    new = make_config(tmp_path, MINIMAL.replace("journal: journal.db", "journal: new.db"))
    Journal(new.storage.journal).close()
    rep = doctor.Report("en")
    doctor.check_journal(new, rep)
    assert all("compact" not in text for _, text in rep.lines)
