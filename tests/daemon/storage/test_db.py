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


def test_close_closes_every_reader_and_readers_keep_a_small_cache(tmp_path: Path) -> None:
    import threading

    from daemon.storage.db import READER_CACHE_KIB, READERS

    path = tmp_path / "j.db"
    j = Journal(path)
    caches: list[int] = []
    inside = threading.Barrier(READERS)

    def read() -> None:
        with j.db.snapshot():  # all at once: each holds a reader of its own
            inside.wait(timeout=10)
            j.db.read("SELECT count(*) FROM readings_log")
            caches.append(j.db.one("PRAGMA cache_size")[0])  # type: ignore[index]

    threads = [threading.Thread(target=read) for _ in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert caches == [-READER_CACHE_KIB] * READERS
    assert _open_fds(path) >= 1 + READERS  # the writer and the readers (the threads are gone, the readers stay)
    j.close()
    assert _open_fds(path) == 0


def test_threads_share_a_few_readers_instead_of_one_each(tmp_path: Path) -> None:
    """Each reader holds the schema and its statements (~1 MB on a year-old journal): their number must not grow
    with the threads that ever read (executor and API threads, bench.memory --year)."""
    import threading

    from daemon.storage.db import READERS

    path = tmp_path / "j.db"
    j = Journal(path)
    j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 1.0, 1_700_000_000)])
    counts: list[int] = []
    for _ in range(4):  # rounds of 8 threads reading at once, each round new threads
        threads = [threading.Thread(target=lambda: counts.append(j.readings.count())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert counts == [1] * 32
    assert 1 <= len(j.db._readers) <= READERS
    j.close()


def test_a_read_that_finds_every_reader_lent_opens_one_of_its_own(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With every reader held by a slow snapshot (a report), a read runs at once on a connection of its own,
    closed after: never held up (it may be on the event loop), and the pool stays at READERS."""
    import threading

    from daemon.storage import db as db_mod
    path = tmp_path / "j.db"
    j = Journal(path)
    j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 1.0, 1_700_000_000)])
    held, release = threading.Barrier(db_mod.READERS + 1), threading.Event()

    def hold() -> None:
        with j.db.snapshot():
            held.wait(timeout=10)
            release.wait(timeout=10)

    threads = [threading.Thread(target=hold) for _ in range(db_mod.READERS)]
    for t in threads:
        t.start()
    held.wait(timeout=10)  # every reader is lent now
    opened: list[sqlite3.Connection] = []
    real_open = j.db._open_reader
    monkeypatch.setattr(j.db, "_open_reader", lambda: opened.append(real_open()) or opened[-1])
    assert j.readings.count() == 1  # at once, on one more connection
    assert len(opened) == 1 and len(j.db._readers) == db_mod.READERS
    with pytest.raises(sqlite3.ProgrammingError):  # closed after that read
        opened[0].execute("SELECT 1")
    release.set()
    for t in threads:
        t.join()
    assert j.readings.count() == 1 and len(j.db._idle) == db_mod.READERS and len(opened) == 1
    j.close()


def test_reads_in_a_snapshot_see_one_state_while_the_writer_commits(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 1.0, 1_700_000_000)])
    with j.db.snapshot():
        before = j.readings.count()
        j.readings.append([Reading("site", "z1", "s1", Quantity.TEMPERATURE, 2.0, 1_700_000_060)])
        assert j.readings.count() == before == 1  # the same reader, the same read transaction
    assert j.readings.count() == 2
    j.close()


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
