"""Local retention: raw readings older than `storage.raw_retention` are deleted; their rollups stay.

The SD card must not fill up, yet the record must last (EN 12830 asks >= 1 year, HACCP 1-2 years),
and nothing may vanish before the uplink has it. The 5-minute and hourly rollups (daemon/rollups.py)
already count every rolled reading, so one pass:

1. rolls whatever the rollups have not reached yet (so a deleted reading is always in them),
2. deletes raw rows older than the cutoff (whole 5-minute buckets of time) — but only rows the rolls
   have reached (id <= the rollup cursor) and every configured forwarder has confirmed (id <= the
   lowest `sink:<id>` cursor), and never the newest row, which keeps journal ids rising. When a
   forwarder holds back rows older than the budget, the pass keeps them and says so in the log,
3. drops rollup rows older than `storage.rollup_retention` (default 2 years), whole hours of them so
   the hourly tier always matches the 5-minute one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.ports.clock import Clock
from daemon.ports.stats import Stats
from daemon.storage import partitions, rollups
from daemon.storage.background import every
from daemon.storage.journal import Journal

log = logging.getLogger("coldchain.retention")
BUCKET_MS = rollups.FIVE_MIN_MS

# One time window of every series in one partition, rows found through its series index (journal v9): the rows
# go from the table, then their index entries. All series in one transaction: the table's pages of a window hold
# every series, so deleting series by series rewrote each page once per series (bench/flash.py). Only for a
# partition that also holds rows to keep (an upgraded journal's partition 0, a late reading): a partition past
# the cutoff as a whole is dropped, which writes none of its pages (daemon/storage/partitions.py).
_WHERE = "series IN (SELECT id FROM series) AND ts_ms >= :start AND ts_ms < :end AND id <= :upto"
_DELETE = (f"DELETE FROM {{log}} WHERE id IN (SELECT id FROM {{index}} WHERE {_WHERE})",
           f"DELETE FROM {{index}} WHERE {_WHERE}")
_MIN_TS = "SELECT MIN((SELECT MIN(ts_ms) FROM {index} i WHERE i.series = s.id)) FROM series s"

@dataclass(frozen=True, slots=True)
class PassResult:
    """What one retention pass did."""

    deleted: int  # raw readings deleted (the rollups keep counting them)
    held: int  # raw readings past the budget kept because a forwarder has not confirmed them
    rollups_dropped: int


class Retention:
    """Runs a pass every `interval` seconds of real time; blocking SQL runs in a thread."""

    def __init__(
        self,
        journal: Journal,
        clock: Clock,
        stats: Stats,
        *,
        raw_retention: float,
        rollup_retention: float,
        cursors: Sequence[str],
        interval: float = 24 * 3600.0,
        window: float = 24 * 3600.0,
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.stats = stats
        self.raw_retention = raw_retention
        self.rollup_retention = rollup_retention
        self.cursors = list(cursors)  # names of the configured forwarders' cursors
        self.interval = interval
        self.window_ms = int(window * 1000)  # time per transaction, of every series
        """Each pass rewrites, per window, the page of the series index where each series' old rows end, so
        `interval` and `window` are a day: ~100 such pages a pass at 100 series, not one per series an hour. A pass
        also rolls first (`rollups.catch_up`), so it must not run more often than the rolls."""
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make a running pass end after its current window (each window is one transaction)."""
        self._stopping.set()

    async def run(self) -> None:
        await every(self.interval, self.run_pass, stats=self.stats, errors="retention_errors", what="retention pass",
                    log=log)

    def confirmed_upto(self) -> tuple[int, str | None]:
        """The highest id every forwarder has confirmed, and the cursor that limits it (None: no limit)."""
        upto, slowest = self.journal.readings.max_id(), None
        for name in self.cursors:
            c = self.journal.cursors.get(name)
            if c < upto:
                upto, slowest = c, name
        return upto, slowest

    def run_pass(self) -> PassResult:
        now = self.clock.now()
        cutoff = int((now - self.raw_retention) * 1000) // BUCKET_MS * BUCKET_MS  # whole buckets only
        rollups.catch_up(self.journal, self._stopping)
        upto, slowest = self.confirmed_upto()
        # never delete the newest row: SQLite gives a new row max(id)+1, and ids below a forwarder's
        # cursor would never be sent (a center idle for a season would otherwise empty the table)
        upto = min(upto, self.journal.readings.max_id() - 1, rollups.state(self.journal).cursor)
        rollups.mark_deleted_before(self.journal, cutoff)  # readers subtract raw rows from rollups up to here
        t0 = time.monotonic()
        deleted = self._drop_whole(cutoff, upto)
        for k in self._partly_old(cutoff):
            deleted += self._delete_windows(k, cutoff, upto)
        held = self._held(upto, cutoff, slowest)
        with self.journal.transaction() as db:
            keep_from = int((now - self.rollup_retention) * 1000) // rollups.HOUR_MS * rollups.HOUR_MS
            dropped = sum(db.execute(f"DELETE FROM {table} WHERE bucket_ms < ?", (keep_from,)).rowcount
                          for table in rollups.TIERS.values())
        if deleted or dropped:
            self.stats.inc("retention_deleted", deleted)
            log.info("retention: %d raw readings older than %s deleted (the rollups keep them), %d old rollup "
                     "rows dropped (%.1f s)", deleted, _day(cutoff / 1000), dropped, time.monotonic() - t0)
        return PassResult(deleted, held, dropped)

    def _drop_whole(self, cutoff: int, upto: int) -> int:
        """Drop every closed partition all of whose rows are past the cutoff and deletable; readings dropped."""
        with self.journal.transaction() as db:
            ps = partitions.parts(db)
            lasts = partitions.last_ids(ps)
            gone = [p for p in ps[:-1] if (lasts[p.k] or 0) <= upto and (p.max_ts is None or p.max_ts < cutoff)]
            deleted = 0
            for p in gone:
                deleted += int(db.execute(f"SELECT COUNT(*) FROM {partitions.log_table(p.k)}").fetchone()[0])
                partitions.drop(db, p.k)
            if gone:
                partitions.rebuild_views(db, [p.k for p in ps if p not in gone])
        return deleted

    def _partly_old(self, cutoff: int) -> list[int]:
        """Partitions that may hold rolled rows older than the cutoff (and newer ones too)."""
        return [int(k) for (k,) in self.journal.read("SELECT k FROM raw_partitions WHERE min_ts < ? ORDER BY k",
                                                     (cutoff,))]

    def _delete_windows(self, k: int, cutoff: int, upto: int) -> int:
        """Range deletes in partition `k`, oldest first, one window per transaction; readings deleted."""
        names = {"log": partitions.log_table(k), "index": partitions.index_table(k)}
        deleted = 0
        start = self._next_ts(names["index"], -1, cutoff, upto)
        while start is not None and not self._stopping.is_set():
            end = min(start + self.window_ms, cutoff)
            with self.journal.transaction() as db:
                args = {"start": start, "end": end, "upto": upto}
                deleted += db.execute(_DELETE[0].format(**names), args).rowcount
                db.execute(_DELETE[1].format(**names), args)
            start = self._next_ts(names["index"], end - 1, cutoff, upto)
        if deleted:  # its oldest row now: the next passes skip it until that is old
            with self.journal.transaction() as db:
                db.execute(f"UPDATE raw_partitions SET min_ts = ({_MIN_TS.format(**names)}) WHERE k = ?", (k,))
        return deleted

    def _next_ts(self, index: str, after: int, cutoff: int, upto: int) -> int | None:
        """The oldest timestamp > `after` of a deletable row of any series in one partition's index, or None (a
        seek per series)."""
        row = self.journal.read(
            f"SELECT MIN((SELECT MIN(ts_ms) FROM {index} i WHERE i.series = s.id AND ts_ms > :a "
            "AND ts_ms < :c AND id <= :u)) FROM series s", {"a": after, "c": cutoff, "u": upto})[0]
        return None if row[0] is None else int(row[0])

    def _held(self, upto: int, cutoff: int, slowest: str | None) -> int:
        """Count raw rows past the budget that only wait for a forwarder, and say so."""
        if slowest is None:
            return 0
        with self.journal.transaction() as db:
            held, oldest = db.execute(
                "SELECT COUNT(*), MIN(ts_ms) FROM readings_log WHERE id > ? AND ts_ms < ?", (upto, cutoff)
            ).fetchone()
        if held:
            self.stats.inc("retention_held_passes")
            log.warning("retention: keeping %d raw readings beyond raw_retention (oldest from %s): forwarder %s "
                        "has not delivered them yet; the journal grows until the uplink catches up",
                        held, _day(oldest / 1000), slowest)
        return int(held)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
