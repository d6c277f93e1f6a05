"""The figures of a precooling run: half- and seven-eighths cooling times, observed and predicted.

Postharvest cooling is judged by the fractional unaccomplished temperature change
Y = (T - Ta) / (T0 - Ta): T the pulp temperature, Ta the cooling (supply) air, T0 the pulp at the start.
The half-cooling time is when Y reaches 1/2, the seven-eighths cooling time when it reaches 1/8
("commercially cool", three half-cooling times for an exponential curve).

- Observed times: the first time Y, from a running median of 5 pulp readings and the air at that moment,
  falls to the fraction (linear interpolation between two readings).
- The fit is Newton's law of cooling with the MEASURED air, dT/dt = -k (T - Ta(t)), in its integral form
  T(t) = c - k * integral(T - Ta) dt, a straight-line least squares in the integral: a drifting air or a fan
  that came on late is in the model, and the integral smooths the probe's noise. Half-cooling time ln 2 / k.
- Prediction of the 7/8 time: the fitted curve from now on, with the air held at its latest value.
- No prediction without enough curve: see `MIN_POINTS`, `MIN_SPAN_S`, `MIN_DROP`, `MIN_R2`.
Pure: readings in, figures out (`daemon/lots/precool.py` reads the journal and acts on them).
"""

from __future__ import annotations

import itertools
import math
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

Point = tuple[float, float]  # (epoch seconds, °C)

HALF = 0.5
SEVEN_EIGHTHS = 0.125
MIN_FIELD_HEAT = 2.0  # °C between the pulp at the start and the air: less is nothing to precool
MIN_POINTS = 6  # pulp readings since the start before a fit is tried
MIN_SPAN_S = 600.0  # ... spanning at least this long
MIN_DROP = 0.1  # ... and Y down by at least this much: the cooling has begun
MIN_R2 = 0.9  # a curve the model does not explain gives no prediction
MEDIAN_OF = 5


@dataclass(frozen=True, slots=True)
class CoolingFigures:
    """One evaluation of a run. `state`: waiting (no pulp or air reading yet), no_field_heat, not_enough_data
    (`reason` says which), predicting (a fit), done (7/8 observed)."""

    state: str
    reason: str | None
    start: float
    as_of: float
    initial_c: float | None = None  # T0
    air_c: float | None = None  # the supply air now
    pulp_c: float | None = None  # the pulp now (running median)
    y: float | None = None  # Y now
    half_s: float | None = None  # observed, seconds from the start
    seven_eighths_s: float | None = None
    k_per_h: float | None = None  # the fitted cooling coefficient
    half_fit_s: float | None = None  # ln 2 / k
    predicted_half_s: float | None = None  # from the start: observed if reached, else from the fit
    predicted_seven_eighths_s: float | None = None
    r2: float | None = None
    points: int = 0

    def json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class Air:
    """The supply air at any time: linear between readings, held beyond the first and last (times indexed once:
    a day of readings is looked up thousands of times per evaluation)."""

    def __init__(self, air: Sequence[Point]) -> None:
        self.points = list(air)
        self.times = [a[0] for a in self.points]

    def at(self, ts: float) -> float:
        air, i = self.points, bisect_right(self.times, ts)
        if i == 0:
            return air[0][1]
        if i == len(air):
            return air[-1][1]
        (t1, v1), (t2, v2) = air[i - 1], air[i]
        return v1 + (v2 - v1) * (ts - t1) / (t2 - t1) if t2 > t1 else v2


def running_median(points: Sequence[Point], n: int = MEDIAN_OF) -> list[Point]:
    """Each reading replaced by the median of the `n` around it (fewer at the ends): one spike is not a crossing."""
    h = n // 2
    vals = [v for _, v in points]
    return [(t, statistics.median(vals[max(0, i - h): i + h + 1])) for i, (t, _) in enumerate(points)]


def crossing(ys: Sequence[Point], fraction: float) -> float | None:
    """The first time Y falls to `fraction`, interpolated between the two readings either side."""
    for i, (t, y) in enumerate(ys):
        if y <= fraction:
            if i == 0:
                return t
            t0, y0 = ys[i - 1]
            return t0 + (t - t0) * (y0 - fraction) / (y0 - y) if y0 > y else t
    return None


def fractions(pulp: Sequence[Point], air: Air, t0: float) -> list[Point]:
    """Y at each pulp reading; none while the air is not yet `MIN_FIELD_HEAT` below T0 (the fan not on yet)."""
    out = []
    for t, v in pulp:
        ta = air.at(t)
        if t0 - ta >= MIN_FIELD_HEAT:
            out.append((t, (v - ta) / (t0 - ta)))
    return out


def fit_newton(pulp: Sequence[Point], air: Air) -> tuple[float, float, float, float]:
    """(k per second, c, r², integral now) of T = c - k * integral(T - Ta) dt over the pulp readings."""
    xs, integral = [0.0], 0.0
    for (t1, v1), (t2, v2) in itertools.pairwise(pulp):
        integral += ((v1 - air.at(t1)) + (v2 - air.at(t2))) / 2 * (t2 - t1)
        xs.append(integral)
    ys = [v for _, v in pulp]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    if sxx <= 0:
        return 0.0, my, 0.0, integral
    slope = sxy / sxx
    c = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (c + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return -slope, c, r2, integral


def figures(pulp: Sequence[Point], air: Sequence[Point], start: float, now: float) -> CoolingFigures:
    """The run's figures from its pulp and supply-air readings (good ones, oldest first) since `start`."""
    pulp = [p for p in pulp if start <= p[0] <= now]
    air_points = [a for a in air if a[0] <= now]
    if not pulp or not air_points:
        return CoolingFigures("waiting", "no pulp reading yet" if not pulp else "no supply-air reading yet",
                              start, now, points=len(pulp))
    t0 = pulp[0][1]
    smooth = running_median(pulp)
    air_now = Air(air_points)
    ta_now = air_now.at(now)
    f = CoolingFigures("not_enough_data", None, start, now, initial_c=t0, air_c=ta_now, pulp_c=smooth[-1][1],
                       points=len(pulp))
    if t0 - ta_now < MIN_FIELD_HEAT:
        return replace(f, state="no_field_heat", reason=f"pulp {t0:.1f} °C is within {MIN_FIELD_HEAT:g} °C of the air")
    ys = fractions(smooth, air_now, t0)
    half, seven = crossing(ys, HALF), crossing(ys, SEVEN_EIGHTHS)
    f = replace(f, y=ys[-1][1] if ys else None, half_s=None if half is None else half - start,
                seven_eighths_s=None if seven is None else seven - start)
    if seven is not None:
        fit = _fit(pulp, air_now, t0, ta_now, start) if len(pulp) >= MIN_POINTS else {}
        fit |= {"predicted_half_s": f.half_s, "predicted_seven_eighths_s": f.seven_eighths_s}
        return replace(f, state="done", **fit)
    why = _not_enough(pulp, ys[-1][1] if ys else 1.0)
    if why is not None:
        return replace(f, reason=why)
    fit = _fit(pulp, air_now, t0, ta_now, start)
    if fit["k_per_h"] <= 0 or fit["r2"] < MIN_R2:
        return replace(f, reason=f"the curve does not follow Newton's law yet (r² {fit['r2']:.2f})",
                       k_per_h=fit["k_per_h"], r2=fit["r2"])
    if half is not None:
        fit["predicted_half_s"] = half - start
    return replace(f, state="predicting", **fit)


def _not_enough(pulp: Sequence[Point], y_now: float) -> str | None:
    if len(pulp) < MIN_POINTS:
        return f"{len(pulp)} pulp readings, {MIN_POINTS} needed"
    if pulp[-1][0] - pulp[0][0] < MIN_SPAN_S:
        return f"{(pulp[-1][0] - pulp[0][0]) / 60:.0f} min of curve, {MIN_SPAN_S / 60:.0f} needed"
    if y_now > 1 - MIN_DROP:
        return "the pulp has not begun to cool"
    return None


def _fit(pulp: Sequence[Point], air: Air, t0: float, ta_now: float, start: float) -> dict[str, Any]:
    """Fitted k, r², the half-cooling time ln 2 / k and the predicted times (from the start)."""
    k, c, r2, integral = fit_newton(pulp, air)
    out: dict[str, Any] = {"k_per_h": k * 3600, "r2": r2}
    if k <= 0:
        return out
    out["half_fit_s"] = math.log(2) / k
    gap_now = (c - k * integral) - ta_now  # the fitted pulp now, above the air
    last = pulp[-1][0]
    for name, frac in (("predicted_half_s", HALF), ("predicted_seven_eighths_s", SEVEN_EIGHTHS)):
        gap = (t0 - ta_now) * frac
        out[name] = last - start + (math.log(gap_now / gap) / k if gap_now > gap else 0.0)
    return out
