"""How much RSS the journal's SQLite page caches add once they have filled (issue 13, the soak's slow rise).

    python -m bench.sqlite_cache                      # the daemon's settings
    python -m bench.sqlite_cache --reader-kib 256 --writer-kib 256

Commits 300,000 readings of 200 sensors through `Journal.commit` (the writer's cache fills), then has 6
threads (asyncio's default executor on 2 cores: min(32, cores + 4)) each scan the readings through its own
reader connection, as `asyncio.to_thread` callers do over hours. A running daemon reaches the same state
slowly, as its journal grows and rolls, retention, the page and the forwarders touch new pages; the 60 s
memory scenario (bench/memory.py) is far from it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from daemon.ports.model import Quantity, Reading
from daemon.storage import db
from daemon.storage.journal import Journal

T0 = 1_700_000_000.0


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


def measure(tmp: Path, reader_kib: int | None, writer_kib: int | None, threads: int = 6) -> dict[str, Any]:
    """RSS before, after the commits, and after every reader thread has scanned (MB)."""
    if writer_kib is not None:
        db.WRITER_CACHE_KIB = writer_kib  # read when the writer connection opens, just below
    j = Journal(tmp / "journal.db")
    start = _rss_mb()
    for b in range(150):
        j.commit([Reading("s", "z1", f"s{i % 200}", Quantity.TEMPERATURE, 5.0 + (i % 7) / 10, T0 + b * 10 + i / 1000)
                  for i in range(2000)])
    written = _rss_mb()

    def scan(_: int) -> None:
        if reader_kib is not None:
            j.read(f"PRAGMA cache_size=-{int(reader_kib)}")
        j.read("SELECT count(*), sum(value) FROM readings_log")

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(scan, range(threads)))
    scanned = _rss_mb()
    j.close()
    return {"writer_cache_kib": db.WRITER_CACHE_KIB, "reader_cache_kib": reader_kib or 2000, "reader_threads": threads,
            "journal_mb": round((tmp / "journal.db").stat().st_size / 1e6, 1), "rss_start_mb": round(start, 1),
            "after_commits_mb": round(written - start, 1), "after_reader_scans_mb": round(scanned - written, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.sqlite_cache")
    ap.add_argument("--reader-kib", type=int, default=None, help="cache_size of each reader (SQLite default 2000)")
    ap.add_argument("--writer-kib", type=int, default=None, help=f"the writer's (daemon: {db.WRITER_CACHE_KIB})")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldchain-sqlcache-") as tmp:
        print(json.dumps(measure(Path(tmp), args.reader_kib, args.writer_kib), indent=1))


if __name__ == "__main__":
    main()
