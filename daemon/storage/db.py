"""The journal file: its connections, migrations, transactions, and the storage error boundary.

WAL mode with `synchronous=FULL`: a committed transaction survives a power cut, and readers
(API, forwarders) never block the writer. One writer connection behind a lock, a few read-only
connections lent to the threads that read (`READERS`). The repositories (`readings.py`, `alerts.py`
...) hold the SQL; this module holds how it runs. Every sqlite3 error that leaves it is a
`StorageError` (`daemon/ports/errors.py`) with the sqlite3 error as its cause, as httpx maps
httpcore's errors at its boundary.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from daemon.ports.errors import JournalCorrupt, JournalFull, JournalLocked, StorageError
from daemon.storage.schema import SCHEMA

Tx = sqlite3.Connection
"""The writer connection inside `Database.transaction()`: repositories take it to write in the caller's
transaction (an alarm, its audit entries and its outbox rows commit together)."""

SQLITE_FULL = 13
_CORRUPT = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
_LOCKED = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
WRITER_CACHE_KIB = 1024
"""The writer's page cache between transactions. It was 8 MiB, and kept every page it had held: on a journal
past 8 MB that was ~9 MB of RSS for good (bench/sqlite_cache.py); then 2 MiB, full within the first minutes of a
200-sensor box (session 8's probe). A reading's commit touches a few pages at the end of the log and of the day's
partition; what the cache misses is in the kernel's page cache, a read, not a write to the card."""
WRITER_SPILL_KIB = 8192
"""How much a transaction may dirty before SQLite spills pages to the WAL ahead of the commit: a roll or a
retention window dirties a page or two per series, and a spilled page is written again (bench/flash.py). The
pages above `WRITER_CACHE_KIB` are freed when the transaction ends."""
READER_CACHE_KIB = 256
"""Each reader's page cache (SQLite's default is 2 MiB per connection): a reader serves one request at a time and
the kernel's page cache holds the file anyway (2 MiB, then 512 KiB: with a reader for each of 4-6 threads that was
2-3 MB of RSS once the page had been open a while)."""
READERS = 3
"""Read-only connections at most, lent to one read (or one `snapshot()`) at a time. Each connection keeps its own
copy of the schema and of the statements it prepared, and on a year-old journal (90 day partitions, each view one
UNION ALL arm per partition) that is ~1 MB each from the first reads. With one reader per thread that grew with
every executor and API thread that ever read: `bench.memory --year` measured SQLite's heap at 7.9 MB after 10
minutes with a reader per thread, 4.6 with these three (2.5 and 2.1 on a new journal). Three let the forwarder,
the dispatcher and a page read at once. A read that finds all three lent (reports hold one for their whole
snapshot) opens a connection of its own and closes it after: it never waits, so neither the event loop nor a
writer waiting on a reader can be held up by a slow report."""
READER_STATEMENTS = 32
"""Prepared statements each reader keeps (Python's default is 128): on a year-old journal a statement over the
`readings` view is ~280 KB (one arm per partition) and preparing it again ~2 ms; the daemon's reads are a few
dozen distinct queries, so the frequent ones stay prepared."""
CLOSE_WAIT_S = 10.0
"""How long `Database.close()` waits for reads under way on other threads."""
PAGE_SIZE = 1024
"""Page size of a new journal. A commit appends whole pages to the WAL (the table's last leaf, and when it takes
a new leaf the free-list trunk, the parent and page 1), so smaller pages write fewer bytes per commit
(bench/flash.py, docs/benchmarks.md). A journal keeps the size it was made with; `coldchain journal compact`
rewrites an older one (daemon/storage/compact.py)."""
WAL_AUTOCHECKPOINT_BYTES = 1000 * 4096
"""WAL size before a checkpoint copies its pages into the file (SQLite's default of 1000 pages of 4 KiB): in bytes,
so a journal of small pages does not checkpoint more often; a page rewritten by many commits (the table's last
page) is copied once per checkpoint."""


def _inode(path: Path) -> int | None:
    """The file's inode (None while it does not exist yet)."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full", for ENOSPC, and for `JournalFull`."""
    if isinstance(exc, JournalFull):
        return True
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def storage_error(exc: sqlite3.Error) -> StorageError:
    """The typed error for a sqlite3 error (raise it `from exc`)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if disk_full(exc):
        return JournalFull(str(exc))
    if code in _LOCKED or "database is locked" in str(exc):
        return JournalLocked(str(exc))
    if code in _CORRUPT or "malformed" in str(exc) or "not a database" in str(exc):
        return JournalCorrupt(str(exc))
    return StorageError(str(exc))


def and_equal(sql: str, filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """`sql` (ending in a WHERE clause) with ` AND column = ?` for each filter that is not None, and their values."""
    args: list[Any] = []
    for column, value in filters.items():
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    return sql, args


def no_readahead(path: Path) -> None:
    """Tell Linux that this process reads the journal at random (POSIX_FADV_RANDOM on SQLite's own file
    descriptors, found in /proc/self/fd). Readahead fills the page cache with large folios (ext4 since Linux
    6.16), and a 4 KiB page SQLite then writes into one dirties the whole folio: the kernel writes it all back.
    On the bench box that multiplied what a checkpoint wrote by 10-30 (bench/flash.py). Elsewhere: nothing."""
    fds = Path("/proc/self/fd")
    if not hasattr(os, "posix_fadvise") or not fds.is_dir():
        return
    names = {str(path.resolve()), str(path.resolve()) + "-wal"}
    for fd in fds.iterdir():
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(fd) in names:
                os.posix_fadvise(int(fd.name), 0, 0, os.POSIX_FADV_RANDOM)


def page_size(db: sqlite3.Connection) -> int:
    """The journal's own page size (a journal made before `PAGE_SIZE` keeps 4096)."""
    return int(db.execute("PRAGMA page_size").fetchone()[0])


def spill_pages(db: sqlite3.Connection, kib: int) -> None:
    """Let a transaction hold `kib` KiB of pages before it spills. `PRAGMA cache_spill=N` sets the threshold,
    but SQLite also reads N as a boolean by its low byte (8192 is "off"), so spilling is switched on after."""
    db.execute(f"PRAGMA cache_spill={max(1, kib * 1024 // page_size(db))}")
    db.execute("PRAGMA cache_spill=ON")  # not a number: the threshold stays, the flag is set


def checkpoint_pages(size: int) -> int:
    """`wal_autocheckpoint` in pages of `size` bytes for `WAL_AUTOCHECKPOINT_BYTES`."""
    return max(1, WAL_AUTOCHECKPOINT_BYTES // size)


def _statements(ddl: str) -> Iterator[str]:
    """The statements of a migration, split at the semicolons that end one (a trigger body holds others)."""
    stmt = ""
    for part in ddl.split(";"):
        stmt += part + ";"
        if sqlite3.complete_statement(stmt):
            if stmt.strip(" \n;"):
                yield stmt
            stmt = ""


@contextlib.contextmanager
def boundary() -> Iterator[None]:
    """sqlite3 errors raised inside become `StorageError`s."""
    try:
        yield
    except sqlite3.Error as exc:
        raise storage_error(exc) from exc


class Database:
    """Thread-safe access to the journal file: one writer connection, `READERS` readers lent to the reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._local = threading.local()
        """`held`: the reader this thread has borrowed, while a read or a snapshot is under way on it."""
        self._readers: list[sqlite3.Connection] = []
        self._idle: list[sqlite3.Connection] = []
        self._pooled = 0  # readers open or being opened, at most READERS
        self._era = 0
        """Counts `close()` calls: a reader lent before one is closed when it comes back."""
        self._reading = 0
        self._closing = False  # a close() waits for the reads under way: new ones wait for it
        self._reads_done = threading.Condition()
        """Reads under way on readers: `close()` waits for them. Closing a connection another thread is reading
        on crashes the process (SIGSEGV in SQLite; a daemon's stop caught a dispatcher's outbox query, CI s12)."""
        self.on_full: Callable[[], None] | None = None
        """Called when a write fails because the disk is full (the disk reserve gives its space back)."""
        with boundary():
            for _ in range(3):
                before = _inode(path)
                self._db = self._connect()
                self._migrate()
                if before is None or _inode(path) == before:
                    break
                # `coldchain journal compact` renamed a new file over the path while this connection waited for
                # its lock: it holds the old, unlinked file, where every write would be lost. Open the new one.
                self._db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        no_readahead(self.path)
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before the first table; a no-op on an existing journal
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        # Debian's SQLite is built to zero every freed page and cell: retention would write each page it frees
        db.execute("PRAGMA secure_delete=FAST")
        # sorts of a roll or a migration in memory: a temp file's pages count as written even when deleted unread
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        spill_pages(db, WRITER_SPILL_KIB)
        db.execute(f"PRAGMA wal_autocheckpoint={checkpoint_pages(page_size(db))}")
        return db

    def _open_reader(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30,
                             cached_statements=READER_STATEMENTS)
        db.execute("PRAGMA query_only=ON")
        db.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
        no_readahead(self.path)
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")  # in the try: a COMMIT refused by a full disk is rolled back too
                except BaseException as exc:
                    if self._db.in_transaction:  # SQLite already rolled back after SQLITE_FULL / IOERR
                        self._db.execute("ROLLBACK")
                    if self.on_full is not None and disk_full(exc):
                        self.on_full()
                    raise
            except sqlite3.Error as exc:
                raise storage_error(exc) from exc

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[sqlite3.Connection]:
        """A reader lent to this thread until the block ends; inside a block already under way on this thread
        (a read in a snapshot), the same one. `close()` waits for the readers lent."""
        held: sqlite3.Connection | None = getattr(self._local, "held", None)
        if held is not None:
            yield held
            return
        with self._reads_done:
            # bounded: a writer that reads inside its transaction holds the lock close() waits for
            self._reads_done.wait_for(lambda: not self._closing, timeout=CLOSE_WAIT_S)
            era, db = self._era, self._idle.pop() if self._idle else None
            pooled = db is not None or self._pooled < READERS  # False: all lent, one extra for this read
            if db is None and pooled:
                self._pooled += 1  # its place, taken before it is opened outside the lock
            self._reading += 1
        try:
            if db is None:
                db = self._open_reader()
                if pooled:
                    with self._reads_done:
                        if era == self._era:  # else close() came while it opened: closed when it comes back
                            self._readers.append(db)
            self._local.held = db
            yield db
        finally:
            self._local.held = None
            with self._reads_done:
                self._reading -= 1
                if pooled and era == self._era:
                    if db is not None:
                        self._idle.append(db)
                    else:  # it could not be opened: its place is free again
                        self._pooled -= 1
                elif db is not None:  # one extra, or lent before a close(), which forgot it
                    with contextlib.suppress(sqlite3.Error):
                        db.close()
                if not self._reading:
                    self._reads_done.notify_all()  # close() waits for this

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """`read` calls inside see one state of the journal (one read transaction on the reader lent to this thread
        for the whole block)."""
        with self._in_use() as db:
            if db.in_transaction:
                yield
                return
            with boundary():
                db.execute("BEGIN")
            try:
                yield
            finally:
                with boundary():
                    db.execute("COMMIT")

    def read(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a read-only query on this thread's reader connection."""
        try:
            with self._in_use() as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc

    def one(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a read-only query, or None."""
        try:
            with self._in_use() as db:
                row: tuple[Any, ...] | None = db.execute(sql, args).fetchone()
                return row
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for n, ddl in enumerate(SCHEMA[version:], start=version + 1):
                with self.transaction() as db:
                    for stmt in _statements(ddl):
                        db.execute(stmt)
                    db.execute(f"PRAGMA user_version={n}")

    def quick_check(self) -> str:
        """SQLite's own consistency check; 'ok' when the file is sound."""
        row = self.one("PRAGMA quick_check")
        return str(row[0] if row else "")

    def journal_mode(self) -> str:
        with boundary():
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def page_size(self) -> int:
        """The file's page size: `PAGE_SIZE` for a journal made since, 4096 for an older one."""
        with boundary():
            return page_size(self._db)

    def close(self) -> None:
        """Checkpoint, then close the writer and every thread's reader: each holds a lock on the file until
        closed, and `coldchain journal compact` needs none held. Reads under way finish first (at most
        CLOSE_WAIT_S: a thread's own open snapshot cannot end while this thread waits for it)."""
        with self._reads_done:
            self._closing = True  # no read starts meanwhile
            self._reads_done.wait_for(lambda: self._reading == 0, timeout=CLOSE_WAIT_S)
        try:
            self._close()
        finally:
            with self._reads_done:
                self._closing = False
                self._reads_done.notify_all()

    def _close(self) -> None:
        with self._lock:
            with self._reads_done:
                for reader in self._readers:  # first: a reader's open snapshot would stop the checkpoint short
                    with contextlib.suppress(sqlite3.Error):
                        reader.close()
                self._readers.clear()
                self._idle.clear()
                self._pooled = 0
                self._era += 1
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
