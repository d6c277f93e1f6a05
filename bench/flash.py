"""Scenario 8: what the write path costs the SD card, on a journal that already holds a year.

Bytes the *process* writes per reading (`/proc/self/io` write_bytes: every page it dirties, WAL
frames and checkpoints alike), not the growth of the file, which is what the card keeps, not what
it is written. Measured for the two centers of issue 13 on a copy of one journal: a 50-sensor center
(temperature + humidity, 1/min) that has run for a year under the default retention, i.e. 90 days of
raw readings (`storage.raw_retention`) and a year of 5-minute and hourly rollups: ~13 M raw rows and
~11 M rollup rows, ~1 GB. That is the journal a box holds after a year; a full year of raw rows would
only be more of the same pages (the per-series index and rollup leaves are already one per series).

The child (`python -m bench.flash child ...`) runs the real write path: `Pipeline` (validation, the
rules' screen is not wired: no alarms), `Journal`, the rollups' `catch_up` and `Retention.run_pass`,
with simulated sensors submitting samples on a simulated clock. Time is compressed: the child
commits (`Pipeline.flush`) at the commit window of simulated time that `Pipeline.run` would use,
and runs the rolls and retention at their configured simulated intervals; wall time does not enter
the figure (SQLite fsyncs every commit: `synchronous=FULL`, so a page dirtied again by the next
commit is counted again, as on the box).

The year journal is built once with bulk SQL (recursive CTEs in big transactions, the series index
made after the rows) and cached under `.bench/flash/`, one per page size (`year-v1-p1024.db` ...: a journal
keeps the page size it was made with); each run works on a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import PY, Result, check
from daemon.storage.db import PAGE_SIZE

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench" / "flash"
YEAR_SENSORS = 50
RAW_DAYS = 90  # storage.raw_retention's default
ROLLUP_DAYS = 365
MIN_MS = 60_000
T_END = 1_767_225_600_000  # 2026-01-01 UTC: the year ends here; the measured run starts here
TARGETS = {50: "<= 300", 500: "<= 200"}
BUILD_VERSION = 1  # bump when the builder changes: the cached journal is rebuilt
PARTITIONED_VERSION = 2  # the same for `build_partitioned`


def _series_rows(sensors: int) -> list[tuple[int, str, str, str, str]]:
    out = []
    for i in range(sensors):
        for k, q in enumerate(("temperature", "humidity")):
            out.append((2 * i + k + 1, "bench", f"z{i % 10}", f"s{i}", q))
    return out


_RAW_SQL = """
WITH RECURSIVE t(m) AS (SELECT :m0 UNION ALL SELECT m + 1 FROM t WHERE m + 1 < :m1)
INSERT INTO readings (ts_ms, series, value, quality)
SELECT t.m * 60000 + s.id * 37, s.id,
       CASE WHEN s.id % 2 = 1 THEN 4.0 + ((t.m * 7 + s.id) % 23) / 10.0 ELSE 88.0 + ((t.m + s.id) % 40) / 10.0 END, 0
FROM t CROSS JOIN series s ORDER BY t.m, s.id
"""

_TIER_SQL = """
WITH RECURSIVE b(k) AS (SELECT :k0 UNION ALL SELECT k + 1 FROM b WHERE k + 1 < :k1)
INSERT INTO {table} (series, bucket_ms, n, min, mean, max, faults)
SELECT s.id, b.k * {width}, {n}, 3.9, 5.0, 6.4, 0 FROM series s CROSS JOIN b ORDER BY s.id, b.k
"""


def build_year(path: Path, page_size: int) -> float:
    """The year journal at `path` in pages of `page_size` bytes (schema of this checkout at v7, see `_build`);
    seconds it took."""
    import sqlite3

    from daemon.storage.schema import SCHEMA

    t0 = time.perf_counter()
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size={page_size}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-200000")
    for n, ddl in enumerate(SCHEMA[:7], start=1):  # v7: the layout the field has; v8+ is the migration's job
        db.executescript(ddl)
        db.execute(f"PRAGMA user_version={n}")
    _build(db)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - t0


def _build(db: Any) -> None:
    db.executemany("INSERT INTO series (id, site, zone, sensor, quantity) VALUES (?, ?, ?, ?, ?)",
                   _series_rows(YEAR_SENSORS))
    db.execute("DROP INDEX readings_series_ts")  # built once after the rows: a sorted build, not 13 M inserts
    m_end = T_END // MIN_MS
    m_start = m_end - RAW_DAYS * 1440
    for m0 in range(m_start, m_end, 1440 * 5):  # 5 days per transaction
        db.execute("BEGIN")
        db.execute(_RAW_SQL, {"m0": m0, "m1": min(m0 + 1440 * 5, m_end)})
        db.execute("COMMIT")
    db.execute("CREATE INDEX readings_series_ts ON readings (series, ts_ms)")
    _tiers_and_cursors(db, db.execute("SELECT max(id) FROM readings").fetchone()[0])


def _tiers_and_cursors(db: Any, top: int) -> None:
    """A year of both tiers, the rollup cursor at the top, a forwarder that has sent everything."""
    for table, width, n in (("rollup_5m", 300_000, 5), ("rollup_1h", 3_600_000, 60)):
        k_end = T_END // width
        db.execute("BEGIN")
        db.execute(_TIER_SQL.format(table=table, width=width, n=n),
                   {"k0": k_end - ROLLUP_DAYS * 86_400_000 // width, "k1": k_end})
        db.execute("COMMIT")
    db.execute("UPDATE rollup_state SET value = ? WHERE name = 'raw'", (top,))
    db.execute("UPDATE rollup_state SET value = ? WHERE name = 'deleted_before'", (T_END - RAW_DAYS * 86_400_000,))
    db.execute("DELETE FROM rollup_state WHERE name = 'hourly'")
    db.execute("INSERT INTO cursors (name, last_id, updated) VALUES ('sink:influx', ?, 0)", (top,))


_DAY_SQL = """
WITH RECURSIVE t(m) AS (SELECT :m0 UNION ALL SELECT m + 1 FROM t WHERE m + 1 < :m1)
INSERT INTO {log} (id, ts_ms, series, value, quality)
SELECT :first + (t.m - :m0) * :n + s.id - 1, t.m * 60000 + s.id * 37, s.id,
       CASE WHEN s.id % 2 = 1 THEN 4.0 + ((t.m * 7 + s.id) % 23) / 10.0 ELSE 88.0 + ((t.m + s.id) % 40) / 10.0 END, 0
FROM t CROSS JOIN series s ORDER BY t.m, s.id
"""


def build_partitioned(path: Path, page_size: int) -> float:
    """The same year in the layout a journal made since v14 has after 90 days: one raw partition per day
    (daemon/storage/partitions.py), each with its series index, the tiers as in `build_year`; seconds it took."""
    import sqlite3

    from daemon.storage import partitions
    from daemon.storage.db import _statements
    from daemon.storage.schema import SCHEMA

    t0 = time.perf_counter()
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in (f"page_size={page_size}", "journal_mode=WAL", "synchronous=OFF", "cache_size=-200000"):
        db.execute(f"PRAGMA {pragma}")
    for n, ddl in enumerate(SCHEMA, start=1):
        for stmt in _statements(ddl):
            db.execute(stmt)
        db.execute(f"PRAGMA user_version={n}")
    rows = _series_rows(YEAR_SENSORS)
    db.executemany("INSERT INTO series (id, site, zone, sensor, quantity) VALUES (?, ?, ?, ?, ?)", rows)
    m_end = T_END // MIN_MS
    first = 1
    for day in range(RAW_DAYS):
        m0 = m_end - (RAW_DAYS - day) * 1440
        db.execute("BEGIN")
        if day:
            partitions.create(db, day, first)
        db.execute(_DAY_SQL.format(log=partitions.log_table(day)), {"m0": m0, "m1": m0 + 1440, "first": first,
                                                                     "n": len(rows)})
        index, log = partitions.index_table(day), partitions.log_table(day)
        db.execute(f"INSERT INTO {index} (series, ts_ms, id) SELECT series, ts_ms, id FROM {log} ORDER BY 1, 2, 3")  # noqa: S608 - partition names
        db.execute("UPDATE raw_partitions SET first_id = ?, min_ts = ?, max_ts = ? WHERE k = ?",
                   (first, m0 * MIN_MS, (m0 + 1440) * MIN_MS - 1, day))
        db.execute("COMMIT")
        first += 1440 * len(rows)
    db.execute("BEGIN")
    partitions.create(db, RAW_DAYS, first)  # what the last day's roll opened: the measured run writes into it
    partitions.rebuild_views(db, list(range(RAW_DAYS + 1)))
    db.execute("COMMIT")
    _tiers_and_cursors(db, first - 1)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - t0


def year_journal(page_size: int, layout: str = "v7") -> Path:
    """The cached year journal in pages of `page_size`, built if missing or from an older builder: `v7`, the layout
    the field had (the child migrates it: an upgraded box), or `partitioned` (a journal made since v14)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / (f"year-v{BUILD_VERSION}-p{page_size}.db" if layout == "v7" else
                    f"year-{layout}-v{PARTITIONED_VERSION}-p{page_size}.db")
    if not path.exists():
        tmp = path.with_suffix(".building")
        took = (build_year if layout == "v7" else build_partitioned)(tmp, page_size)
        tmp.rename(path)
        (CACHE / f"build-p{page_size}.json").write_text(json.dumps({"seconds": round(took)}), encoding="utf-8")
    return path


def _copy(src: Path, dst: Path) -> None:
    """A copy of `src` that is not in the page cache. A fresh copy sits there in large folios (ext4 has them
    since Linux 6.16), and a 4 KiB write into one dirties, and counts in write_bytes, the whole folio: a
    checkpoint of 41 pages counted 1.5 MB instead of 164 KB. A journal written page by page over a year on
    the box has no such folios."""
    for p in dst.parent.glob(dst.name + "*"):
        p.unlink()
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _empty(path: Path, page_size: int) -> None:
    """An empty journal file in pages of `page_size` (fixed by its first write: the WAL header)."""
    import sqlite3

    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA page_size={page_size}")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


# ---------------------------------------------------------------- parent


def run_one(tmp: Path, sensors: int, period: float, hours: float, extra: dict[str, Any] | None = None,
            code: Path = ROOT, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """One child run on a fresh copy of the year journal in pages of `page_size`, with the `daemon` of checkout
    `code`; its JSON report."""
    tmp.mkdir(parents=True, exist_ok=True)
    journal = tmp / "journal.db"
    extra = dict(extra or {})
    layout = str(extra.pop("layout", "v7"))
    if extra.pop("grown", False):  # no year journal: the child grows its own (`warmup_hours`) from empty
        _empty(journal, page_size)
    else:
        _copy(year_journal(page_size, layout), journal)
    spec = {"journal": str(journal), "sensors": sensors, "period": period, "hours": hours, **(extra or {})}
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([PY, str(Path(__file__).with_name("flash_child.py")), json.dumps(spec)], cwd=tmp, env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"flash child failed: {out.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def result(sensors: int, period: float, raw: dict[str, Any], what: str = "", key: str = "") -> Result:
    per = raw["write_bytes_per_reading"]
    target = TARGETS[sensors]
    per_year = sensors * raw["quantities"] * 365 * 86400 / period
    raw["gb_per_year_written"] = round(per * per_year / 1e9, 2)
    return Result(
        key=f"flash@{sensors}{key}", value=per, unit="B/reading", target=target,
        met=check(per, target), raw=raw,
        title=f"8. bytes the process writes per reading, {sensors} sensors / {period:g} s, year-old journal "
              f"in {raw.get('page_size', 4096)} B pages{what and ', ' + what}",
        notes=[f"{raw['gb_per_year_written']} GB written a year at this rate; the file grows "
               f"{raw['growth_bytes_per_reading']} B per reading (what the card keeps, not what it is written)"])


RUNS: list[tuple[str, int, float, float, dict[str, Any], str]] = [
    # the 50-sensor center polled (Modbus/serial: commit_interval), the 500-sensor one on MQTT (flush_interval);
    # 2 simulated days resp. 3 hours: each holds several commit windows, rolls and one retention pass
    ("", 50, 60.0, 48.0, {"kind": "polled", "layout": "partitioned"}, "day partitions (journal v14)"),
    ("/upgraded", 50, 60.0, 48.0, {"kind": "polled"}, "upgraded from v7: its first raw_retention after the upgrade"),
    ("/mqtt", 50, 60.0, 48.0, {"kind": "acked", "layout": "partitioned"},
     "over MQTT, day partitions, the defaults (flush_interval 60 since session 12)"),
    ("", 500, 10.0, 3.0, {"kind": "acked", "humidity": False, "layout": "partitioned"},
     "day partitions, the defaults (flush_interval 60, MQTT 5: a window of 1000, a commit every 750)"),
    ("/flush5", 500, 10.0, 3.0, {"kind": "acked", "humidity": False, "layout": "partitioned",
                                 "storage": {"flush_interval": 5.0}},
     "day partitions, flush_interval 5 (the default of session 11)"),
    ("/mqtt311", 500, 10.0, 3.0,
     {"kind": "acked", "humidity": False, "layout": "partitioned", "mqtt": {"protocol": "3.1.1"}},
     "day partitions, a broker that refused MQTT 5 (3.1.1, stock window 20: a commit every 15 messages)"),
    ("/flush0.2", 500, 10.0, 3.0,
     {"kind": "acked", "humidity": False, "layout": "partitioned", "storage": {"flush_interval": 0.2},
      "mqtt": {"protocol": "3.1.1"}},
     "day partitions, the defaults before session 11 (flush_interval 0.2, MQTT 3.1.1)"),
]


def run(tmp: Path, quick: bool = False) -> list[Result]:
    out = []
    for n, (key, sensors, period, hours, extra, what) in enumerate(RUNS):
        raw = run_one(tmp / f"r{n}", sensors, period, 1.0 if quick else hours, extra)
        out.append(result(sensors, period, raw, what, key))
    return out


def main(argv: list[str]) -> int:
    """`python -m bench.flash [sensors period hours [json extra]]`: one run, its report printed. The extra's
    `code` picks the checkout measured, `page_size` the year journal (default: `PAGE_SIZE` of daemon/storage/db.py,
    what a new journal gets), `run` the folder under .bench/flash/ (runs side by side need their own), `grown`
    an empty journal instead of the year's, which the child fills for `warmup_hours` before it measures."""
    if argv:
        extra = json.loads(argv[3]) if len(argv) > 3 else {}
        code = Path(extra.pop("code", ROOT))
        size = int(extra.pop("page_size", PAGE_SIZE))
        folder = CACHE / str(extra.pop("run", "run"))
        raw = run_one(folder, int(argv[0]), float(argv[1]), float(argv[2]), extra, code, size)
        print(json.dumps(raw, indent=1))
        return 0
    for r in run(CACHE / "run"):
        print(r.title, r.value, r.target, r.met, json.dumps(r.raw))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
