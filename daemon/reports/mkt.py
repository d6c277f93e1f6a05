"""Mean kinetic temperature, time out of range and data completeness over irregular samples.

Readings are turned into a step function: each good value holds from its own timestamp
until the next reading of the same sensor, but never longer than `max_hold` (the sensor's
no-data limit, 5 x its interval by default). A longer silence is a *gap*: it weighs
nothing in the mean and the MKT, counts neither in nor out of range, and is reported as
`gap_minutes`; completeness shows it too. The last reading before a period's start holds
into the period (clipped), so a period that begins between two readings is not short.
Where retention has replaced raw readings by 5-minute rollups, each rollup is one value
(its mean) held for its 5 minutes; counts and extremes stay exact.

MKT per USP <1079>: T_k = (ΔH/R) / -ln( Σ w_i·exp(-ΔH/(R·T_i)) / Σ w_i ), with T in kelvin,
ΔH/R = 10000 K (ΔH = 83.144 kJ/mol) and w_i the time each value held.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DH_R = 10_000.0  # ΔH/R in kelvin (USP <1079>)
KELVIN = 273.15


@dataclass(frozen=True, slots=True)
class Segment:
    """A value held over [start, end) in epoch seconds."""

    start: float
    end: float
    value: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def segments(samples: Sequence[tuple[float, float]], start: float, end: float, max_hold: float) -> list[Segment]:
    """Sample-and-hold segments clipped to [start, end); `samples` are (ts, value) sorted by ts."""
    out: list[Segment] = []
    for i, (ts, value) in enumerate(samples):
        nxt = samples[i + 1][0] if i + 1 < len(samples) else math.inf
        a, b = max(ts, start), min(nxt, ts + max_hold, end)
        if b > a:
            out.append(Segment(a, b, value))
    return out


def covered_seconds(segs: Iterable[Segment]) -> float:
    return sum(s.seconds for s in segs)


def mean_kinetic(segs: Sequence[Segment], dh_r: float = DH_R) -> float | None:
    """Time-weighted MKT in °C, or None without data. Log-sum-exp keeps tiny terms exact."""
    total = covered_seconds(segs)
    if total <= 0:
        return None
    logs = [math.log(s.seconds) - dh_r / (s.value + KELVIN) for s in segs if s.seconds > 0]
    top = max(logs)
    log_mean = top + math.log(sum(math.exp(x - top) for x in logs)) - math.log(total)
    return dh_r / -log_mean - KELVIN


def mean_kinetic_points(values: Sequence[float], dh_r: float = DH_R) -> float:
    """MKT of equally spaced values: the textbook formula, for checks and hand calculations."""
    s = sum(math.exp(-dh_r / (v + KELVIN)) for v in values) / len(values)
    return dh_r / -math.log(s) - KELVIN


def time_mean(segs: Sequence[Segment]) -> float | None:
    total = covered_seconds(segs)
    return sum(s.value * s.seconds for s in segs) / total if total > 0 else None


def out_of_range(segs: Iterable[Segment], low: float | None, high: float | None) -> list[tuple[float, float, str]]:
    """(start, end, 'above'|'below') for each held value outside [low, high]."""
    out = []
    for s in segs:
        if high is not None and s.value > high:
            out.append((s.start, s.end, "above"))
        elif low is not None and s.value < low:
            out.append((s.start, s.end, "below"))
    return out


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union: two sensors out of range at once count once for the zone."""
    total, cur_a, cur_b = 0.0, None, None
    for a, b in sorted(intervals):
        if cur_b is None or a > cur_b:
            if cur_b is not None and cur_a is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None and cur_b is not None:
        total += cur_b - cur_a
    return total


def completeness(count: int, start: float, end: float, interval: float) -> float | None:
    """Percent of expected readings (one per `interval` over the period) that arrived, at most 100."""
    expected = (end - start) / interval
    if expected <= 0:
        return None
    return min(100.0, 100.0 * count / expected)


@dataclass(frozen=True, slots=True)
class Summary:
    """Statistics of one series (or a whole zone) over one period."""

    count: int
    expected: float
    completeness: float | None
    min: float | None
    max: float | None
    mean: float | None
    mkt: float | None
    minutes_above: float
    minutes_below: float
    minutes_out: float
    gap_minutes: float


@dataclass(frozen=True, slots=True)
class Rollup:
    """A 5-minute row retention left where raw readings were deleted (`n` GOOD readings in it)."""

    start: float
    seconds: float
    n: int
    min: float
    mean: float
    max: float


def summarize(
    samples: Sequence[tuple[float, float]],
    start: float,
    end: float,
    *,
    interval: float,
    max_hold: float,
    low: float | None,
    high: float | None,
    rolled: Sequence[Rollup] = (),
) -> tuple[Summary, list[Segment]]:
    """One sensor's summary over [start, end); `samples` may include the last one before `start`.

    Rolled-up periods count their readings and extremes exactly; for MKT, mean and time out
    of range each 5-minute row is one held value, its mean.
    """
    segs = segments(samples, start, end, max_hold)
    for r in rolled:
        a, b = max(r.start, start), min(r.start + r.seconds, end)
        if b > a:
            segs.append(Segment(a, b, r.mean))
    segs.sort(key=lambda s: s.start)
    inside = [v for ts, v in samples if start <= ts < end]
    counted = [r for r in rolled if start <= r.start < end]
    # A reading before `start` whose value is held into the period counts in the mean and MKT, so it counts in
    # min and max too: otherwise a signed report could show a mean below its minimum.
    held = [sg.value for sg in segs if sg.end > start and sg.start < end]
    lows = inside + [r.min for r in counted] + held
    highs = inside + [r.max for r in counted] + held
    count = len(inside) + sum(r.n for r in counted)
    oor = out_of_range(segs, low, high)
    above = sum(b - a for a, b, k in oor if k == "above")
    below = sum(b - a for a, b, k in oor if k == "below")
    span = max(0.0, end - start)
    return Summary(
        count=count,
        expected=span / interval,
        completeness=completeness(count, start, end, interval),
        min=min(lows, default=None),
        max=max(highs, default=None),
        mean=time_mean(segs),
        mkt=mean_kinetic(segs),
        minutes_above=above / 60,
        minutes_below=below / 60,
        minutes_out=(above + below) / 60,
        gap_minutes=(span - covered_seconds(segs)) / 60,
    ), segs


def combine(parts: Sequence[tuple[Summary, list[Segment]]], low: float | None, high: float | None,
            span_s: float) -> Summary:
    """A zone's summary from its sensors': MKT/mean over all held time, out-of-range as a union."""
    segs = [s for _, ss in parts for s in ss]
    oor = out_of_range(segs, low, high)
    above = union_seconds((a, b) for a, b, k in oor if k == "above")
    below = union_seconds((a, b) for a, b, k in oor if k == "below")
    covered = union_seconds((s.start, s.end) for s in segs)
    count = sum(p.count for p, _ in parts)
    expected = sum(p.expected for p, _ in parts)
    mins = [p.min for p, _ in parts if p.min is not None]
    maxs = [p.max for p, _ in parts if p.max is not None]
    return Summary(
        count=count,
        expected=expected,
        completeness=min(100.0, 100.0 * count / expected) if expected > 0 else None,
        min=min(mins, default=None),
        max=max(maxs, default=None),
        mean=time_mean(segs),
        mkt=mean_kinetic(segs),
        minutes_above=above / 60,
        minutes_below=below / 60,
        minutes_out=union_seconds((a, b) for a, b, _ in oor) / 60,
        gap_minutes=max(0.0, span_s - covered) / 60,
    )
