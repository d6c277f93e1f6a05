"""Chart-ready history: raw readings for short ranges, per-bucket min/mean/max for long ones.

Downsampling runs inside SQLite (`GROUP BY` over `ts_ms / step` on the series/time index),
so a year of 1-minute readings becomes at most `max_points` rows per series without
the readings ever reaching Python. Past `storage.raw_retention` only retention's 5-minute
rollups remain; they are read alongside raw readings and weighted by their count.
Buckets are aligned to the site's local midnight (its current UTC offset), so day
buckets are calendar days where the managers are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.journal import Journal

# Bucket widths in seconds, from one minute to one week; the smallest that fits is used.
STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
MAX_POINTS = 1000
COLUMNS = ("ts", "min", "mean", "max", "count")


def choose_step(span_s: float, max_points: int = MAX_POINTS) -> int:
    """The narrowest bucket that keeps `span_s` within `max_points` buckets."""
    for step in STEPS:
        if span_s / step <= max_points:
            return step
    return int(-(-span_s // max_points))


@dataclass
class Series:
    """One sensor's quantity over the range; `step` 0 means raw readings."""

    zone: str
    sensor: str
    quantity: str
    step: int
    rows: list[tuple[float, float, float, float, int]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"zone": self.zone, "sensor": self.sensor, "quantity": self.quantity, "step": self.step,
                "columns": list(COLUMNS), "rows": [list(r) for r in self.rows]}


# Raw GOOD readings, plus the 5-minute rollups that retention leaves once raw rows are gone:
# (ts_ms, min, sum, max, n) so both kinds aggregate the same way.
_POINTS = """
WITH pts(ts_ms, lo, sm, hi, n) AS (
    SELECT ts_ms, value, value, value, 1 FROM readings
    WHERE series = :sid AND ts_ms >= :a AND ts_ms < :b AND quality = 0 AND value IS NOT NULL
    UNION ALL
    SELECT bucket_ms, min, mean * n, max, n FROM rollup_5m
    WHERE series = :sid AND bucket_ms >= :a AND bucket_ms < :b AND n > 0
)
"""


def raw_rows(journal: Journal, sid: int, start: float, end: float, limit: int) -> list[tuple[float, ...]]:
    """Readings as they are; where only rollups remain, one point per 5-minute row."""
    rows = journal.read(_POINTS + "SELECT ts_ms, lo, sm / n, hi, n FROM pts ORDER BY ts_ms LIMIT :limit",
                        {"sid": sid, "a": round(start * 1000), "b": round(end * 1000), "limit": limit})
    return [(ts / 1000, lo, round(mean, 3), hi, n) for ts, lo, mean, hi, n in rows]


def bucket_rows(journal: Journal, sid: int, start: float, end: float, step: int,
                offset_s: int = 0) -> list[tuple[float, ...]]:
    """min/mean/max/count per `step`-second bucket, computed by SQLite; ts = bucket start."""
    rows = journal.read(
        _POINTS + "SELECT (ts_ms + :off) / :step AS bk, MIN(lo), SUM(sm) / SUM(n), MAX(hi), SUM(n) FROM pts "
        "GROUP BY bk ORDER BY bk",
        {"sid": sid, "a": round(start * 1000), "b": round(end * 1000), "off": offset_s * 1000, "step": step * 1000})
    return [(b * step - offset_s, lo, round(mean, 3), hi, n) for b, lo, mean, hi, n in rows]


def history(
    journal: Journal,
    *,
    start: float,
    end: float,
    zone: str | None = None,
    sensor: str | None = None,
    quantity: str | None = None,
    max_points: int = MAX_POINTS,
    min_interval: float = 60.0,
    offset_s: int = 0,
) -> list[Series]:
    """Every matching series over [start, end): raw when it fits in `max_points`, else buckets."""
    span = max(0.0, end - start)
    raw = span / min_interval <= max_points
    step = 0 if raw else choose_step(span, max_points)
    out = []
    for sid, (_, z, s, q) in sorted(journal.series_ids(zone=zone, sensor=sensor, quantity=quantity).items(),
                                    key=lambda kv: kv[1]):
        rows = raw_rows(journal, sid, start, end, max_points) if raw else bucket_rows(
            journal, sid, start, end, step, offset_s)
        out.append(Series(z, s, q, step, rows))  # type: ignore[arg-type]
    return out


def to_csv(series: Sequence[Series]) -> str:
    """One row per point, long format: easy to pivot in a spreadsheet. UTF-8 with BOM for Excel."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["zone", "sensor", "quantity", "step_s", "time_utc", *COLUMNS])
    for s in series:
        for ts, lo, mean, hi, n in s.rows:
            iso = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
            w.writerow([s.zone, s.sensor, s.quantity, s.step, iso, ts, lo, mean, hi, n])
    return buf.getvalue()
