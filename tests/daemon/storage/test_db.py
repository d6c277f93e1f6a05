"""The storage boundary: sqlite3 errors leave storage typed, with the sqlite3 error as cause; transactions are
all or nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.ports.errors import JournalCorrupt, JournalFull, JournalLocked, StorageError
from daemon.ports.model import Quantity, Reading
from daemon.storage.db import disk_full, storage_error
from daemon.storage.journal import Journal


@pytest.mark.parametrize(("message", "kind"), [
    ("database or disk is full", JournalFull),
    ("database is locked", JournalLocked),
    ("file is not a database", JournalCorrupt),
    ("database disk image is malformed", JournalCorrupt),
    ("no such table: nothing", StorageError),
])
def test_sqlite_errors_map_to_the_error_tree(message: str, kind: type[StorageError]) -> None:
    err = storage_error(sqlite3.OperationalError(message))
    assert type(err) is kind and str(err) == message


def test_journal_full_counts_as_disk_full() -> None:
    assert disk_full(JournalFull("database or disk is full"))
    assert not disk_full(JournalLocked("database is locked"))


def test_a_file_that_is_not_a_journal_is_reported_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"not an sqlite file at all " * 100)
    with pytest.raises(JournalCorrupt) as refused:
        Journal(path)
    assert isinstance(refused.value.__cause__, sqlite3.DatabaseError)


def test_a_write_blocked_by_another_writer_is_reported_locked(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    other = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        j.db._db.execute("PRAGMA busy_timeout=50")
        with pytest.raises(JournalLocked):
            j.cursors.set("sink:a", 1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    j.cursors.set("sink:a", 1)  # free again
    assert j.cursors.get("sink:a") == 1


def test_a_transaction_is_all_or_nothing_and_other_errors_pass_unchanged(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    def fail_inside() -> None:
        with j.transaction() as tx:
            j.audit.add(tx, 1.0, "zhang", "operator", "lot.check_in", "L-001", {})
            raise ValueError("the caller's own error")

    with pytest.raises(ValueError, match="caller's own"):
        fail_inside()
    assert j.audit.entries() == []
    with pytest.raises(StorageError) as refused, j.transaction() as tx:
        tx.execute("INSERT INTO nowhere VALUES (1)")
    assert isinstance(refused.value.__cause__, sqlite3.OperationalError)


def test_reads_are_behind_the_boundary_too(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    with pytest.raises(StorageError):
        j.read("SELECT * FROM nowhere")
    j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 4.0, 1_700_000_000.0)])
    with j.snapshot():
        assert j.read("SELECT COUNT(*) FROM readings") == [(1,)]


def _open_fds(path: Path) -> int:
    """This process's file descriptors on the journal and its -wal / -shm files."""
    fd_dir = Path("/proc/self/fd")
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    count = 0
    for fd in fd_dir.iterdir():
        try:
            count += str(fd.readlink()) in names
        except OSError:
            continue  # closed while listing
    return count


def test_close_closes_every_threads_reader_and_readers_keep_a_small_cache(tmp_path: Path) -> None:
    import threading

    from daemon.storage.db import READER_CACHE_KIB

    path = tmp_path / "j.db"
    j = Journal(path)
    caches: list[int] = []

    def read() -> None:
        j.db.read("SELECT count(*) FROM readings_log")
        caches.append(j.db.one("PRAGMA cache_size")[0])  # type: ignore[index]

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert caches == [-READER_CACHE_KIB] * 3
    assert _open_fds(path) >= 4  # the writer and three readers (the threads are gone, their readers are not)
    j.close()
    assert _open_fds(path) == 0


def test_a_new_journal_has_small_pages_and_checkpoints_by_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New journals get `PAGE_SIZE`; an older journal keeps 4096 (SQLite cannot change it in WAL mode), and both
    checkpoint after the same WAL bytes, not the same pages."""
    from daemon.storage import db as db_mod

    new = Journal(tmp_path / "new.db")
    assert db_mod.PAGE_SIZE < 4096
    assert new.db._db.execute("PRAGMA page_size").fetchone()[0] == db_mod.PAGE_SIZE
    assert new.db._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == db_mod.WAL_AUTOCHECKPOINT_BYTES // db_mod.PAGE_SIZE
    new.close()
    monkeypatch.setattr(db_mod, "PAGE_SIZE", 4096)
    Journal(tmp_path / "old.db").close()
    monkeypatch.undo()
    old = Journal(tmp_path / "old.db")  # reopened with today's PAGE_SIZE: it keeps its own
    assert old.db._db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert old.db._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's default, as before
    old.close()


def test_close_releases_the_file_readers_included(tmp_path: Path) -> None:
    """After `close()` nothing of the journal holds its file lock (a reader left open would stop a compact)."""
    j = Journal(tmp_path / "j.db")
    j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 1.0, 1_700_000_000)])
    assert j.readings.count() == 1  # this thread's reader is open now
    j.close()
    other = sqlite3.connect(tmp_path / "j.db", isolation_level=None, timeout=0)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")  # raises "database is locked" while any connection is open
    other.execute("COMMIT")
    other.close()


def test_a_read_after_close_opens_a_new_reader(tmp_path: Path) -> None:
    """Reports read a journal after the daemon closed it (tests, `coldchain report`): close() must not break that."""
    j = Journal(tmp_path / "j.db")
    j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 1.0, 1_700_000_000)])
    assert j.readings.count() == 1
    j.close()
    assert j.readings.count() == 1


CLOSE_WHILE_READING = """
import contextlib, pathlib, sys, threading, time
from daemon.storage.db import Database
tmp = pathlib.Path(sys.argv[1])
for n in range(150):
    db = Database(tmp / f"j{n}.db")
    stop = threading.Event()
    def reader() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a read after close() may fail; it must not crash
                db.read("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
                        "SELECT sum(x) FROM c")
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.002)
    db.close()
    stop.set()
    t.join()
"""


def test_close_while_another_thread_reads_does_not_crash_the_process(tmp_path: Path) -> None:
    """Closing a reader connection another thread is reading on crashed the process with SIGSEGV in SQLite (CI,
    session 12: a daemon's stop while the dispatcher's outbox query ran). close() now waits for reads under way
    and holds new ones back. In a child process: a crash is its exit status, not this worker's."""
    out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CLOSE_WHILE_READING, str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr[-2000:]
