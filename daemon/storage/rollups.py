"""5-minute and hourly rollups of every reading, kept current from a cursor over journal ids.

Every reading with id <= the `raw` cursor (table `rollup_state`) is counted, once, in `rollup_5m`
and `rollup_1h`: per series and bucket, the count, min, mean and max of GOOD values and the
number of faults (quality not GOOD, or no value). Readings above the cursor are the *tail*
that readers take from the raw table, so a reader that adds tier rows and the tail counts each
reading once. A late reading (a device buffer sent days later) gets a new, higher id, so the
next roll merges it into its old bucket.

The rolls run off the ingest path (`Roller`, every 5 minutes, and at the start of each retention
pass) rather than inside `Readings.append`: one `GROUP BY` over the ids since the last roll writes
each series' bucket once per roll, where an UPSERT per touched bucket in every commit writes it once
per reading at real-time rates, in the transaction ingest waits for (bench/findings.md has the figures).

Both tiers are merged from the same readings in the same transaction. Journal v6 queues two
backfills that the first rolls do in small transactions (a box with months of data starts at once):
the raw cursor starts at 0, and the `hourly` row asks for every series' hours to be computed from
the 5-minute rows retention made before v6. Until that is done readers use the 5-minute tier.

Raw rows stay until retention deletes them (only at or below the cursor), so for one bucket raw
rows and a rollup row may both exist; `ARCHIVED_5M` gives what a 5-minute row holds beyond the raw
rows still in the journal, for readers that show raw readings where they exist (reports, charts
of short ranges). Retention records how far it may have deleted (`deleted_before`), so that
subtraction only runs where raw rows can be missing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from daemon.ports.stats import Stats
from daemon.storage import partitions
from daemon.storage.background import every
from daemon.storage.journal import Journal

log = logging.getLogger("coldchain.rollups")

FIVE_MIN_MS = 300_000
HOUR_MS = 3_600_000
TIERS = {300: "rollup_5m", 3600: "rollup_1h"}  # bucket width in seconds -> table
ROLL_INTERVAL = 24 * 3600.0
"""s: longest time between two rolls. A roll writes a few pages per series in each tier and in the series index
whatever it rolls (~20 at 100 series: the leaf, its split, the siblings SQLite rebalances), so on a year-old
journal its cost per reading is those pages / (readings a series had since the last roll): every 5 minutes
that was ~1.6 KB per reading at 1/min; once a day, ~60 B plus the checkpoint's copy (bench/flash.py)."""
ROLL_TAIL = 500_000
"""...or sooner, once this many ids wait (a big center): readers scan the unrolled tail by rowid, so it stays short."""
ROLL_CHECK = 60.0  # s between two looks at the tail's length
CHUNK = 500_000  # journal ids per roll transaction: a normal roll is one transaction (each one rewrites those pages)

# Readings (lo, hi] of the journal folded into their buckets of one tier, merged into rows that exist.
_ROLL = """
INSERT INTO {table} (series, bucket_ms, n, min, mean, max, faults)
SELECT series, ts_ms / {width} * {width} AS b,
       SUM(quality = 0 AND value IS NOT NULL),
       MIN(CASE WHEN quality = 0 THEN value END),
       AVG(CASE WHEN quality = 0 THEN value END),
       MAX(CASE WHEN quality = 0 THEN value END),
       SUM(quality != 0 OR value IS NULL)
FROM {log} WHERE id > :lo AND id <= :hi
GROUP BY series, b
ON CONFLICT (series, bucket_ms) DO UPDATE SET
    mean = CASE WHEN n + excluded.n > 0
                THEN (COALESCE(mean, 0) * n + COALESCE(excluded.mean, 0) * excluded.n) / (n + excluded.n) END,
    min = CASE WHEN min IS NULL THEN excluded.min WHEN excluded.min IS NULL THEN min
               ELSE MIN(min, excluded.min) END,
    max = CASE WHEN max IS NULL THEN excluded.max WHEN excluded.max IS NULL THEN max
               ELSE MAX(max, excluded.max) END,
    n = n + excluded.n,
    faults = faults + excluded.faults
"""
_ROLLS = [_ROLL.format(table=table, width=width * 1000, log="{log}") for width, table in TIERS.items()]
# ... and the same ids into their partition's series index (journal v9, v14): after the roll, the view finds them
_ROLLS.append("INSERT INTO {index} (series, ts_ms, id) SELECT series, ts_ms, id FROM {log} "
              "WHERE id > :lo AND id <= :hi ORDER BY series, ts_ms, id")

# Every hour of one series from its 5-minute rows (v6 backfill of the rows retention made before the
# hourly tier; x / 0 is NULL in SQLite: an hour of faults only has no mean).
_REBUILD_1H = """
INSERT OR REPLACE INTO rollup_1h (series, bucket_ms, n, min, mean, max, faults)
SELECT series, bucket_ms / 3600000 * 3600000 AS h, SUM(n), MIN(min), SUM(mean * n) / SUM(n), MAX(max), SUM(faults)
FROM rollup_5m WHERE series = :sid
GROUP BY series, h
"""

CURSOR_SQL = "(SELECT value FROM rollup_state WHERE name = 'raw')"

DELETED_SQL = "(SELECT value FROM rollup_state WHERE name = 'deleted_before')"

# What the 5-minute rows with bucket_ms in [:a, :b) of series :sid hold beyond the GOOD raw rows still in
# the journal (and rolled): (bucket_ms, min, sum, max, n). Count and sum are exact; min and max are the
# bucket's, which covers the raw rows left too (they differ only in a bucket that is partly deleted).
# Only buckets before `deleted_before` (retention's highest cutoff) can have lost raw rows, so a range
# retention never reached costs nothing. One GROUP BY of rollup rows and negated raw rows: no join,
# which SQLite would run as a nested scan.
ARCHIVED_5M = f"""
SELECT bucket_ms, MIN(lo), SUM(sm), MAX(hi), SUM(n) FROM (
    SELECT bucket_ms, min AS lo, mean * n AS sm, max AS hi, n FROM rollup_5m
    WHERE series = :sid AND bucket_ms >= :a AND bucket_ms < MIN(:b, {DELETED_SQL}) AND n > 0
    UNION ALL
    SELECT ts_ms / 300000 * 300000, NULL, -value, NULL, -1 FROM readings
    WHERE series = :sid AND ts_ms >= :a AND ts_ms < MIN(:b + 300000, {DELETED_SQL} + 300000) AND quality = 0
      AND value IS NOT NULL AND id <= {CURSOR_SQL}
) GROUP BY bucket_ms HAVING SUM(n) > 0
"""


def mark_deleted_before(journal: Journal, ts_ms: int) -> None:
    """Retention is about to delete raw rows older than `ts_ms` (call before it does)."""
    with journal.transaction() as db:
        db.execute("UPDATE rollup_state SET value = MAX(value, ?) WHERE name = 'deleted_before'", (ts_ms,))


@dataclass(frozen=True, slots=True)
class State:
    """Where the rollups stand, as one reader saw it."""

    cursor: int  # readings with id <= cursor are in every tier
    hourly: bool  # False while v6's backfill of the hourly tier is not finished
    lag: int  # journal ids above the cursor

    def widths(self) -> tuple[int, ...]:
        """Bucket widths (s) readers may use, widest first."""
        return (3600, 300) if self.hourly else (300,)


def cursor(journal: Journal) -> int:
    """The `raw` cursor: readings with id <= it are in every tier."""
    return int(journal.read(f"SELECT {CURSOR_SQL}")[0][0])


def state(journal: Journal) -> State:
    """Read inside `journal.snapshot()` together with the rows it is used for."""
    rows = dict(journal.read("SELECT name, value FROM rollup_state"))
    cursor = int(rows.get("raw", 0))
    top = int(journal.read("SELECT id FROM readings_top")[0][0])
    return State(cursor, "hourly" not in rows, max(0, top - cursor))


def roll(journal: Journal, max_ids: int = CHUNK) -> int:
    """Fold the next journal ids (at most `max_ids`) into both tiers in one transaction; ids advanced."""
    with journal.transaction() as db:
        lo = int(db.execute(f"SELECT {CURSOR_SQL}").fetchone()[0])
        top = int(db.execute("SELECT id FROM readings_top").fetchone()[0])
        hi = min(top, lo + max_ids)
        if hi <= lo:
            return 0
        ps = partitions.parts(db)
        lasts = partitions.last_ids(ps)
        for p in ps:
            last = lasts[p.k]
            if p.first_id > hi or (last is not None and last <= lo):
                continue  # none of (lo, hi] in this partition
            names = {"log": partitions.log_table(p.k), "index": partitions.index_table(p.k)}
            for sql in _ROLLS:
                db.execute(sql.format(**names), {"lo": lo, "hi": hi})
            partitions.note_rolled(db, p.k, lo, hi)
        db.execute("UPDATE rollup_state SET value = ? WHERE name = 'raw'", (hi,))
        if hi == top:  # every id rolled: ids from here on may go to a new partition (the views' tail is its own)
            partitions.open_next_if_due(db, top)
    return hi - lo


def rebuild_hourly(journal: Journal) -> bool:
    """One series of v6's hourly backfill per transaction; False once there is nothing left to do."""
    with journal.transaction() as db:
        row = db.execute("SELECT value FROM rollup_state WHERE name = 'hourly'").fetchone()
        if row is None:
            return False
        sid = db.execute("SELECT MIN(id) FROM series WHERE id > ?", (row[0],)).fetchone()[0]
        if sid is None:
            db.execute("DELETE FROM rollup_state WHERE name = 'hourly'")
            return False
        db.execute(_REBUILD_1H, {"sid": sid})
        db.execute("UPDATE rollup_state SET value = ? WHERE name = 'hourly'", (sid,))
    return True


def catch_up(journal: Journal, stop: threading.Event | None = None, max_ids: int = CHUNK) -> int:
    """Roll until every reading written so far is in the tiers (or `stop` is set); ids rolled."""
    total = 0
    while (stop is None or not stop.is_set()) and rebuild_hourly(journal):
        time.sleep(0)  # let a waiting append take the journal lock between transactions
    while stop is None or not stop.is_set():
        n = roll(journal, max_ids)
        if n == 0:
            break
        total += n
        time.sleep(0)
    return total


class Roller:
    """Keeps the tiers and the series index current: a roll every `interval` seconds of real time, or once
    `tail` ids wait, in a thread."""

    def __init__(self, journal: Journal, stats: Stats, interval: float = ROLL_INTERVAL, tail: int = ROLL_TAIL,
                 check: float = ROLL_CHECK) -> None:
        self.journal = journal
        self.stats = stats
        self.interval = interval
        self.tail = tail
        self.check = min(check, interval)
        self._last = float("-inf")  # monotonic time of the last roll: the first look rolls (a restart's tail)
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await every(self.check, self.roll_due, stats=self.stats, errors="rollup_errors", what="rollup", log=log)

    def roll_due(self) -> int:
        """Blocking: `roll_all` if `interval` has passed or the tail is `tail` ids long; ids rolled."""
        if time.monotonic() - self._last < self.interval and state(self.journal).lag < self.tail:
            return 0
        self._last = time.monotonic()
        return self.roll_all()

    def roll_all(self) -> int:
        """Blocking: `catch_up`, saying so when it was long (a backfill or a long stop, not the minute's readings)."""
        t0 = time.monotonic()
        n = catch_up(self.journal, self._stopping)
        if n > CHUNK:
            log.info("rollups: %d journal ids rolled into the 5-minute and hourly tiers (%.1f s)",
                     n, time.monotonic() - t0)
        return n
