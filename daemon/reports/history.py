"""Chart-ready history: raw readings for short ranges, per-bucket min/mean/max for long ones.

Downsampling runs inside SQLite, so rows never reach Python. A step that a rollup tier's width
divides (5 minutes, 1 hour; daemon/rollups.py) is built from that tier's rows: a year at a 12-hour
step reads 8,760 hourly rows instead of 525,600 readings. The edges of the range that do not fill
a whole tier bucket, and the readings not rolled yet (ids above the rollup cursor), come from the
raw table, so every reading counts once. Finer steps and raw ranges group raw readings, plus the
5-minute rows of readings that retention has deleted. Buckets are aligned to the site's local
midnight (its current UTC offset), so day buckets are calendar days where the managers are.
"""

from __future__ import annotations

import bisect
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.storage import rollups
from daemon.storage.journal import Journal

# Bucket widths in seconds, from one minute to one week; the smallest that fits is used.
STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
MAX_POINTS = 1000
COLUMNS = ("ts", "min", "mean", "max", "count")


def choose_step(span_s: float, max_points: int = MAX_POINTS) -> int:
    """The narrowest bucket that keeps `span_s` within `max_points` buckets."""
    for step in STEPS:
        if span_s / step <= max_points:
            return step
    return int(-(-span_s // (max_points * 3600))) * 3600  # whole hours, so the hourly tier still serves it


@dataclass
class Series:
    """One sensor's quantity over the range; `step` 0 means raw readings."""

    zone: str
    sensor: str
    quantity: str
    step: int
    rows: list[tuple[float, float, float, float, int]] = field(default_factory=list)
    replayed: list[float] = field(default_factory=list)
    """Times of readings a broker replayed from its backlog: their time is the arrival, not the measurement."""

    def json(self) -> dict[str, Any]:
        return {"zone": self.zone, "sensor": self.sensor, "quantity": self.quantity, "step": self.step,
                "columns": list(COLUMNS), "rows": [list(r) for r in self.rows],
                "replayed": replayed_spans(self.replayed)}

    def replayed_in(self, ts: float) -> int:
        """Replayed readings in the point at `ts` (the reading itself, or its bucket)."""
        times = self.replayed
        if self.step:
            return bisect.bisect_left(times, ts + self.step) - bisect.bisect_left(times, ts)
        i = bisect.bisect_left(times, ts - 0.0005)
        return int(i < len(times) and abs(times[i] - ts) < 0.0005)


def replayed_spans(times: Sequence[float], gap: float = 60.0) -> list[list[float]]:
    """Runs of replayed readings as [first, last, count], a new run after `gap` seconds without one."""
    spans: list[list[float]] = []
    for t in times:
        if spans and t - spans[-1][1] <= gap:
            spans[-1][1] = t
            spans[-1][2] += 1
        else:
            spans.append([t, t, 1])
    return spans


_RAW = ("SELECT ts_ms, value, value, value, 1 FROM readings {how} WHERE {where} series = :sid "
        "AND ts_ms >= :{a} AND ts_ms < :{b} AND quality = 0 AND value IS NOT NULL")
_TIER = ("SELECT bucket_ms, min, mean * n, max, n FROM {table} WHERE series = :sid AND bucket_ms >= :{a} "
         "AND bucket_ms < :{b} AND n > 0")


def _ms(t: float) -> int:
    return round(t * 1000)


# GOOD raw readings in [a, b) and the 5-minute rows of readings retention deleted, as (ts_ms, min, sum, max, n).
_FINE = "WITH pts(ts_ms, lo, sm, hi, n) AS (" + _RAW.format(how="", where="", a="a", b="b") + " UNION ALL " + \
    rollups.ARCHIVED_5M + ")"


def _plan(a: int, b: int, widths: tuple[int, ...]) -> list[tuple[str | None, int, int]]:
    """Cover [a, b) ms: whole buckets of the widest tier that fits in the middle, narrower tiers
    outside it, raw readings (None) at the edges that fill no 5-minute bucket."""
    plan: list[tuple[str | None, int, int]] = []
    source, lo, hi = None, a, b
    for width in sorted(widths):
        w = width * 1000
        wa, wb = -(-a // w) * w, b // w * w
        if wa >= wb:
            break
        plan += [(source, lo, wa), (source, wb, hi)]
        source, lo, hi = rollups.TIERS[width], wa, wb
    plan.append((source, lo, hi))
    return [p for p in plan if p[1] < p[2]]


def _tier_points(sid: int, a: int, b: int, widths: tuple[int, ...],
                 st: rollups.State) -> tuple[str, dict[str, int]]:
    """[a, b) as rows of the tiers (`_plan`), plus the readings no roll has reached (ids above the cursor)."""
    parts, args = [], {"sid": sid, "cur": st.cursor}
    plan = _plan(a, b, widths)
    for i, (table, lo, hi) in enumerate(plan):
        sql = _RAW.format(how="", where="", a=f"a{i}", b=f"b{i}") if table is None else \
            _TIER.format(table=table, a=f"a{i}", b=f"b{i}")
        parts.append(sql)
        args |= {f"a{i}": lo, f"b{i}": hi}
    rolled = [(lo, hi) for table, lo, hi in plan if table is not None]
    if rolled:
        # the tail by rowid: the roll keeps it short (storage.roll_interval, rollups.ROLL_TAIL)
        # (journal v9: the table itself, by rowid; the `readings` view would walk the year through its index)
        parts.append(_RAW.format(how="", where="id > :cur AND", a="ta", b="tb").replace(" FROM readings ",
                                                                                        " FROM readings_log ", 1))
        args |= {"ta": min(lo for lo, _ in rolled), "tb": max(hi for _, hi in rolled)}  # one span: the 5-minute one
    return "WITH pts(ts_ms, lo, sm, hi, n) AS (" + " UNION ALL ".join(parts) + ")", args


def raw_rows(journal: Journal, sid: int, start: float, end: float, limit: int) -> list[tuple[float, ...]]:
    """Readings as they are; where retention deleted them, one point per 5-minute row."""
    a, b = _ms(start), _ms(end)
    rows = journal.read(_FINE + "SELECT ts_ms, lo, sm / n, hi, n FROM pts ORDER BY ts_ms LIMIT :limit",  # noqa: S608 - _FINE is this module's SQL; values are bound
                        {"sid": sid, "a": a, "b": b, "limit": limit})
    return [(ts / 1000, lo, round(mean, 3), hi, n) for ts, lo, mean, hi, n in rows]


def bucket_rows(journal: Journal, sid: int, start: float, end: float, step: int,
                offset_s: int = 0) -> list[tuple[float, ...]]:
    """min/mean/max/count per `step`-second bucket, computed by SQLite; ts = bucket start."""
    a, b = _ms(start), _ms(end)
    with journal.snapshot():
        st = rollups.state(journal)
        widths = tuple(w for w in st.widths() if step % w == 0 and offset_s % w == 0)
        if widths:
            pts, args = _tier_points(sid, a, b, widths, st)
        else:
            pts, args = _FINE, {"sid": sid, "a": a, "b": b}
        rows = journal.read(
            pts + "SELECT (ts_ms + :off) / :step AS bk, MIN(lo), SUM(sm) / SUM(n), MAX(hi), SUM(n) FROM pts "  # noqa: S608 - pts is this module's SQL; values are bound
            "GROUP BY bk ORDER BY bk", args | {"off": offset_s * 1000, "step": step * 1000})
    return [(bk * step - offset_s, lo, round(mean, 3), hi, n) for bk, lo, mean, hi, n in rows]


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
    for sid, (_, z, s, q) in sorted(journal.readings.series_ids(zone=zone, sensor=sensor, quantity=quantity).items(),
                                    key=lambda kv: kv[1]):
        rows = raw_rows(journal, sid, start, end, max_points) if raw else bucket_rows(
            journal, sid, start, end, step, offset_s)
        out.append(Series(z, s, q, step, rows, journal.readings.replayed_times(sid, start, end)))  # type: ignore[arg-type]
    return out


def to_csv(series: Sequence[Series]) -> str:
    """One row per point, long format: easy to pivot in a spreadsheet. UTF-8 with BOM for Excel."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    # replayed: readings in the point whose time is when the broker replayed them, not when they were measured
    w.writerow(["zone", "sensor", "quantity", "step_s", "time_utc", *COLUMNS, "replayed"])
    for s in series:
        for ts, lo, mean, hi, n in s.rows:
            iso = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
            w.writerow([s.zone, s.sensor, s.quantity, s.step, iso, ts, lo, mean, hi, n, s.replayed_in(ts)])
    return buf.getvalue()
