"""The writer's page cache: a transaction keeps its dirty pages up to WRITER_SPILL_KIB (no page spilled to the
WAL and written again, the SD card's budget), and the cache gives them back when it ends (RSS, issue 13)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from daemon.storage.db import PAGE_SIZE, WRITER_CACHE_KIB, WRITER_SPILL_KIB
from daemon.storage.journal import Journal

_sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library Python's _sqlite3 is linked to: the same heap counters
_sqlite.sqlite3_memory_used.restype = ctypes.c_int64
MIB = 1024 * 1024


def test_the_writer_spills_only_past_its_spill_size(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    with j.db.transaction() as tx:
        assert tx.execute("PRAGMA cache_size").fetchone()[0] == -WRITER_CACHE_KIB
        # SQLite reads `cache_spill=8192` as "off" (the low byte): the threshold is set and spilling is on
        assert tx.execute("PRAGMA cache_spill").fetchone()[0] == WRITER_SPILL_KIB * 1024 // PAGE_SIZE
    j.close()


def test_a_big_transaction_keeps_its_pages_then_the_cache_gives_them_back(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path)
    wal = Path(f"{path}-wal")
    with j.db.transaction() as tx:
        tx.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, v BLOB)")
    before = _sqlite.sqlite3_memory_used()
    with j.db.transaction() as tx:
        wal_at_begin = os.path.getsize(wal)
        tx.executemany("INSERT INTO scratch (v) VALUES (?)", ((os.urandom(400),) for _ in range(12_000)))
        held = _sqlite.sqlite3_memory_used() - before
        assert os.path.getsize(wal) == wal_at_begin  # ~6 MiB dirty, nothing spilled before the commit
    after = _sqlite.sqlite3_memory_used() - before
    assert held > 5 * MIB
    assert after < held - 4 * MIB  # an 8 MiB cache kept all of it (7.5 MB) for good
    assert after < WRITER_CACHE_KIB * 1024 * 1.3  # back to the cache size (page headers on top of the pages)
    j.close()
