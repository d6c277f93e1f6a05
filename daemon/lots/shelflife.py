"""Remaining shelf life of a lot: an ESTIMATE from its temperature history and the catalog.

Model (Q10, as in postharvest handbooks: "deterioration 2-4x faster at 10 °C more"):
- the commodity's `storage_life` text gives the life L at the recommended temperature;
  the first figure is used and, for a range ("3-5 months"), its LOWER bound, to err short;
- while the lot is held at T above the recommended range, it ages at Q10 ** ((T - T_max) / 10)
  days per day (T_max = the catalog's upper storage temperature); inside the range, or below
  it, at 1 day per day (chilling and freezing damage are not ageing: the excursion list shows them);
- time with no reading ages at 1 day per day (nothing is known, nothing is assumed);
- remaining = L - equivalent days used, at the recommended temperature from now on.
It is labelled an estimate everywhere it is shown; cultivar, maturity and handling matter more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from daemon.config.catalog import Commodity
from daemon.reports.mkt import Segment

Q10 = 2.5
DAY = 86400.0
_UNITS = {"d": 1.0, "day": 1.0, "days": 1.0, "week": 7.0, "weeks": 7.0, "month": 30.0, "months": 30.0}
_LIFE = re.compile(r"(\d+(?:\.\d+)?)(?:\s*[-–~]\s*\d+(?:\.\d+)?)?\s*(days?|d|weeks?|months?)\b", re.IGNORECASE)


def parse_storage_life(text: str) -> float | None:
    """Days from text like '2-6 weeks', '3-5 months (air)', 'about 1 week', '7-14 days'; None if absent."""
    m = _LIFE.search(text or "")
    if m is None:
        return None
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


@dataclass(frozen=True, slots=True)
class ShelfLife:
    life_days: float
    used_days: float
    remaining_days: float
    elapsed_days: float
    q10: float
    reference_c: float | None

    def json(self) -> dict[str, float | bool | None]:
        return {"estimate": True, "life_days": round(self.life_days, 1), "used_days": round(self.used_days, 2),
                "remaining_days": round(self.remaining_days, 1), "elapsed_days": round(self.elapsed_days, 2),
                "q10": self.q10, "reference_c": self.reference_c}


def rate(temp: float, t_max: float | None, q10: float = Q10) -> float:
    """Days of storage life used per day held at `temp`."""
    if t_max is None or temp <= t_max:
        return 1.0
    return float(q10 ** ((temp - t_max) / 10.0))


def used_days(segs: Sequence[Segment], start: float, end: float, t_max: float | None, q10: float = Q10) -> float:
    """Equivalent days at the recommended temperature used over [start, end) by one sensor's track."""
    covered = sum(s.seconds for s in segs)
    used = sum(s.seconds * rate(s.value, t_max, q10) for s in segs) / DAY
    return used + max(0.0, (end - start) - covered) / DAY


def estimate(commodity: Commodity, tracks: Sequence[tuple[float, float, Sequence[Sequence[Segment]]]],
             q10: float = Q10) -> ShelfLife | None:
    """The estimate over a lot's stays: (start, end, one segment list per sensor) each.

    With several sensors in a room the warmest track counts (the lot may sit next to it).
    """
    life = parse_storage_life(commodity.storage_life)
    if life is None:
        return None
    used = elapsed = 0.0
    for start, end, per_sensor in tracks:
        elapsed += (end - start) / DAY
        used += max((used_days(segs, start, end, commodity.temp_max, q10) for segs in per_sensor),
                    default=(end - start) / DAY)
    return ShelfLife(life, used, max(0.0, life - used), elapsed, q10, commodity.temp_max)
