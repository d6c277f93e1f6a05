"""`coldchain journal compact`: an old 4 KiB-page journal rewritten into the new page size with every row kept;
refused, the journal untouched, while the daemon or anything else has it open or the disk is short; an
interrupted compact leaves the journal as it was and its temporary copy is removed by the next run."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from daemon.app.cli import main
from daemon.ports.model import Quality, Quantity, Reading
from daemon.storage import compact as compact_mod
from daemon.storage import db as db_mod
from daemon.storage.compact import CompactRefused, compact, temp_path
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL

OLD_PAGE = 4096


def old_journal(path: Path, monkeypatch: pytest.MonkeyPatch, n: int = 3000) -> Path:
    """A journal made before the smaller pages (4096 B), with readings, a fault, an alarm and a cursor."""
    with monkeypatch.context() as m:
        m.setattr(db_mod, "PAGE_SIZE", OLD_PAGE)
        j = Journal(path)
    quantities = (Quantity.TEMPERATURE, Quantity.HUMIDITY)
    j.commit([Reading("site", f"z{i % 3}", f"s{i % 7}", quantities[i % 2], i / 10, 1.7e9 + i,
                      Quality.FAULT if i % 97 == 0 else Quality.GOOD, "85" if i % 97 == 0 else None)
              for i in range(n)])
    j.cursors.set("sink:influx", 1234)
    with j.transaction() as tx:
        tx.execute("INSERT INTO alerts (key, zone, kind, severity, state, started, uid)"
                   " VALUES ('z1:temp_high', 'z1', 'temp_high', 'warning', 'firing', 1.7e9, 'a1')")
    j.close()
    return path


def fingerprint(path: Path) -> tuple[dict[str, int], str, int]:
    """Row counts of every table, a SHA-256 of the readings in id order, and the schema version."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        counts = {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608 (names from sqlite_master)
        digest = hashlib.sha256()
        for row in db.execute("SELECT id, ts_ms, series, value, quality, note, flags FROM readings ORDER BY id"):
            digest.update(repr(row).encode())
        return counts, digest.hexdigest(), db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def page_size(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA page_size").fetchone()[0])
    finally:
        db.close()


def test_compact_keeps_every_row_in_the_new_page_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    before = fingerprint(path)
    assert page_size(path) == OLD_PAGE and before[0]["readings_log"] == 3000
    done = compact(path)
    assert (done.before_page, done.after_page) == (OLD_PAGE, db_mod.PAGE_SIZE) and db_mod.PAGE_SIZE < OLD_PAGE
    assert page_size(path) == db_mod.PAGE_SIZE
    assert fingerprint(path) == before
    assert not temp_path(path).exists()
    j = Journal(path)  # the daemon opens it as its own: WAL, sound, and it takes new readings
    assert j.journal_mode() == "wal" and j.quick_check() == "ok"
    j.commit([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 5.0, 1.8e9)])
    assert j.readings.count() == 3001
    j.close()
    assert compact(path).before_page == db_mod.PAGE_SIZE  # a second run has nothing to do
    assert fingerprint(path)[0]["readings_log"] == 3001


def test_refused_while_the_daemon_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    before = fingerprint(path)
    j = Journal(path)
    j.begin_run()
    try:
        with pytest.raises(CompactRefused) as refused:
            compact(path)
        assert refused.value.key == "compact.running"
    finally:
        j.end_run()
        j.close()
    assert page_size(path) == OLD_PAGE and fingerprint(path) == before


def test_refused_while_another_program_has_it_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No run mark (or a stale one), but a connection open: a reader, or a daemon whose mark was removed."""
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    (tmp_path / "journal.db.running").write_text("999999999\n", encoding="utf-8")  # no such process
    j = Journal(path)
    try:
        assert j.readings.count() == 3000
        with pytest.raises(CompactRefused) as refused:
            compact(path)
        assert refused.value.key == "compact.in_use"
    finally:
        j.close()
    assert page_size(path) == OLD_PAGE
    assert compact(path).after_page == db_mod.PAGE_SIZE  # closed: it goes through


def test_refused_when_the_disk_cannot_hold_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    size_mb = path.stat().st_size / 1e6
    monkeypatch.setattr(compact_mod, "free_mb", lambda p: size_mb + compact_mod.MARGIN_MB - 1)
    with pytest.raises(CompactRefused) as refused:
        compact(path)
    assert refused.value.key == "compact.no_space"
    assert int(str(refused.value.params["need"])) >= round(size_mb + compact_mod.MARGIN_MB) - 1
    assert page_size(path) == OLD_PAGE and not temp_path(path).exists()
    monkeypatch.setattr(compact_mod, "free_mb", lambda p: size_mb + compact_mod.MARGIN_MB + 1)
    assert compact(path).after_page == db_mod.PAGE_SIZE


def test_an_interrupted_compact_leaves_the_journal_and_the_next_run_cleans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    before, raw = fingerprint(path), path.read_bytes()

    def killed(journal: Path, tmp: Path) -> None:  # as a power cut after the copy, before the rename
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(compact_mod, "_swap", killed)
        with pytest.raises(KeyboardInterrupt):
            compact(path)
    assert temp_path(path).exists() and page_size(temp_path(path)) == db_mod.PAGE_SIZE
    assert path.read_bytes() == raw and fingerprint(path) == before
    done = compact(path)
    assert done.removed_leftover and done.after_page == db_mod.PAGE_SIZE
    assert fingerprint(path) == before and not temp_path(path).exists()


def test_a_half_written_copy_is_removed_and_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill during VACUUM INTO leaves a truncated file: the next run starts its copy afresh."""
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    before = fingerprint(path)
    temp_path(path).write_bytes(path.read_bytes()[:20_000])
    done = compact(path)
    assert done.removed_leftover
    assert fingerprint(path) == before and page_size(path) == db_mod.PAGE_SIZE


def test_a_copy_failing_its_check_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    raw = path.read_bytes()
    monkeypatch.setattr(compact_mod, "check", lambda db: "*** in database main *** Page 7: btreeInitPage() error")
    with pytest.raises(CompactRefused) as refused:
        compact(path)
    assert refused.value.key == "compact.copy_bad"
    assert path.read_bytes() == raw and not temp_path(path).exists()


def test_the_command_prints_sizes_and_refuses_with_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(MINIMAL, encoding="utf-8")
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    j = Journal(path)
    assert main(["journal", "compact", "--config", str(cfg), "--lang", "en"]) == 1
    err = capsys.readouterr().err
    assert "is open in another program" in err and "left as it was" in err
    j.close()
    assert main(["journal", "compact", "--config", str(cfg), "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert f"in pages of {OLD_PAGE} B -> " in out and f"in pages of {db_mod.PAGE_SIZE} B" in out
    assert main(["journal", "compact", "--config", str(cfg)]) == 0  # the site's language: zh-CN
    assert "无需整理" in capsys.readouterr().out


def test_the_copy_keeps_the_journals_mode_and_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with sudo, the copy would be root's: the daemon's user could not write its journal any more."""
    path = old_journal(tmp_path / "journal.db", monkeypatch)
    path.chmod(0o640)
    st = path.stat()
    compact(path)
    after = path.stat()
    assert (after.st_mode & 0o7777, after.st_uid, after.st_gid) == (0o640, st.st_uid, st.st_gid)
    assert page_size(path) == db_mod.PAGE_SIZE


def test_a_journal_left_by_a_kill_keeps_the_rows_only_its_wal_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut leaves committed rows in the WAL, not yet in the file: the copy has them."""
    import subprocess
    import sys

    path = old_journal(tmp_path / "journal.db", monkeypatch)
    code = ("import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None);"
            "db.execute('PRAGMA wal_autocheckpoint=0');"
            "db.executemany('INSERT INTO readings (ts_ms, series, value, quality) VALUES (?, 1, 9.5, 0)',"
            " [(1_800_000_000_000 + i,) for i in range(500)]); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert (tmp_path / "journal.db-wal").stat().st_size > 0  # the 500 rows are only there
    compact(path)
    counts, _, _ = fingerprint(path)
    assert counts["readings_log"] == 3500 and page_size(path) == db_mod.PAGE_SIZE
    assert not (tmp_path / "journal.db-wal").exists() or (tmp_path / "journal.db-wal").stat().st_size == 0


def test_a_daemon_that_opened_the_old_file_during_the_swap_opens_the_new_one(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon started while compact ran: its connection waited for the lock on the old file, then compact
    renamed the new one over the path. Writes there would go to an unlinked file; it notices and reopens."""
    path = tmp_path / "journal.db"
    Journal(path).close()
    new = tmp_path / "new.db"
    j2 = Journal(new)
    j2.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 4.5, 1_700_000_000)])
    j2.close()
    real, swapped = db_mod.Database._migrate, []

    def migrate_then_swap(self: db_mod.Database) -> None:
        real(self)
        if not swapped:  # the rename lands while this first connection is open
            swapped.append(True)
            os.replace(new, path)

    monkeypatch.setattr(db_mod.Database, "_migrate", migrate_then_swap)
    j = Journal(path)
    j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 5.5, 1_700_000_060)])
    j.close()
    assert [r.value for r in Journal(path).readings.read_after(0, 10)] == [4.5, 5.5]  # both in the file on disk
