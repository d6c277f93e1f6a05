"""`coldchain journal compact`: an existing journal rewritten into the page size new journals get.

SQLite keeps a journal's page size for its life (in WAL mode not even a VACUUM changes it), and a journal made
before `PAGE_SIZE` writes more to the SD card per reading (docs/benchmarks.md, scenario 8). `VACUUM INTO` a
temporary file beside the journal with the new page size, `integrity_check` on it, then an atomic rename: until
the rename the journal is untouched, so an interrupted compact leaves it as it was, and its temporary file is
removed by the next run. Refused while anything has the journal open (the daemon keeps its writer open the
whole run) and when the disk cannot hold a second copy.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from daemon.storage.db import PAGE_SIZE
from daemon.storage.disk import free_mb

MARGIN_MB = 50.0
"""Free space asked for beyond the copy's size: the copy's WAL while it is switched to WAL mode, and room for the
rest of the box (logs) meanwhile."""
TMP_SUFFIX = ".compact-tmp"
_SIDE_FILES = ("", "-journal", "-wal", "-shm")


class CompactRefused(Exception):
    """The journal was left as it was; `key` names the message (daemon/messages), `params` its values."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(f"{key} {params}")
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Compacted:
    """What a compact did: sizes in bytes (journal and WAL), page sizes (equal: there was nothing to do), and
    whether it removed a temp file an interrupted compact had left."""

    before_bytes: int
    after_bytes: int
    before_page: int
    after_page: int
    removed_leftover: bool


def temp_path(journal: Path) -> Path:
    """Where the copy is written: beside the journal (same filesystem, so the rename is atomic)."""
    return journal.with_name(journal.name + TMP_SUFFIX)


def on_disk(journal: Path) -> int:
    """Bytes of the journal and its WAL."""
    return sum(p.stat().st_size for p in (journal, journal.with_name(journal.name + "-wal")) if p.exists())


def remove_leftover(journal: Path) -> bool:
    """Remove the temp file (and its side files) an interrupted compact left; True if there was one."""
    found = False
    for side in _SIDE_FILES:
        p = Path(str(temp_path(journal)) + side)
        if p.exists():
            p.unlink()
            found = True
    return found


def _daemon_pid(journal: Path) -> int | None:
    """The pid in the daemon's run mark (`Journal.run_mark`) if that process is alive, else None."""
    mark = journal.with_name(journal.name + ".running")
    try:
        pid = int(mark.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a mark left by a power cut or a kill
    except PermissionError:
        return pid  # alive, another user's (the service's) process
    return pid


def _lock(journal: Path) -> sqlite3.Connection:
    """A connection holding the journal's file lock exclusively, so nothing opens it meanwhile; refused when
    something has it open (every connection of a WAL journal holds a shared lock on the file)."""
    db = sqlite3.connect(journal, isolation_level=None, timeout=0.5)
    try:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("COMMIT")  # the lock stays in exclusive locking mode
    except sqlite3.OperationalError as exc:
        db.close()
        raise CompactRefused("compact.in_use", path=journal, detail=str(exc)) from exc
    return db


def _check_space(journal: Path) -> None:
    need = on_disk(journal) / 1e6 + MARGIN_MB
    free = free_mb(journal)
    if free < need:
        raise CompactRefused("compact.no_space", path=journal, free=round(free), need=round(need))


def _same_owner(journal: Path, tmp: Path) -> None:
    """`tmp` gets the journal's owner and mode: run as root (sudo), the copy would be root's, and the daemon's
    user could no longer write its journal."""
    st = journal.stat()
    os.chmod(tmp, st.st_mode & 0o7777)
    if (os.stat(tmp).st_uid, os.stat(tmp).st_gid) != (st.st_uid, st.st_gid):
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError as exc:
            raise CompactRefused("compact.owner", path=journal, uid=st.st_uid) from exc


def _copy(db: sqlite3.Connection, journal: Path, tmp: Path, page_size: int) -> None:
    """The journal, checkpointed, vacuumed into `tmp` in pages of `page_size`; `tmp` checked, given the journal's
    owner and mode, and made durable."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute(f"PRAGMA page_size={page_size}")  # VACUUM INTO writes the copy in this size
    db.execute("VACUUM INTO ?", (str(tmp),))
    out = sqlite3.connect(tmp, isolation_level=None)
    try:
        verdict = check(out)
        if verdict != "ok":
            raise CompactRefused("compact.copy_bad", path=tmp, detail=verdict)
        out.execute("PRAGMA journal_mode=WAL")  # the daemon's mode, set once in the file header
    finally:
        out.close()
    _same_owner(journal, tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check(db: sqlite3.Connection) -> str:
    """SQLite's full `integrity_check` of the copy: 'ok', or its first complaints."""
    rows = db.execute("PRAGMA integrity_check(5)").fetchall()
    return "; ".join(str(r[0]) for r in rows)


def _swap(journal: Path, tmp: Path) -> None:
    """`tmp` becomes the journal in one rename; the old journal's WAL and shm go (a WAL left beside the new file
    would be replayed into it)."""
    os.replace(tmp, journal)
    for side in ("-wal", "-shm"):
        Path(str(journal) + side).unlink(missing_ok=True)
    dir_fd = os.open(journal.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def compact(journal: Path, page_size: int = PAGE_SIZE) -> Compacted:
    """Rewrite `journal` in pages of `page_size` (nothing to do if it has them already); raises `CompactRefused`
    when it may not, the journal untouched."""
    if not journal.exists():
        raise CompactRefused("compact.missing", path=journal)
    removed = remove_leftover(journal)
    pid = _daemon_pid(journal)
    if pid is not None:
        raise CompactRefused("compact.running", path=journal, pid=pid)
    db = _lock(journal)
    try:
        before, before_page = on_disk(journal), int(db.execute("PRAGMA page_size").fetchone()[0])
        if before_page == page_size:
            return Compacted(before, before, before_page, page_size, removed)
        _check_space(journal)
        try:
            _copy(db, journal, temp_path(journal), page_size)
        except BaseException:
            remove_leftover(journal)  # a kill or power cut leaves it instead: the next run removes it
            raise
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.close()
    _swap(journal, temp_path(journal))
    return Compacted(before, on_disk(journal), before_page, page_size, removed)
