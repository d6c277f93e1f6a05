"""A report's verdict and its data gaps: a report never calls a period compliant that it cannot see.

Three answers: `not_compliant` when the data shows time out of range or an excursion (whatever the
completeness: what was seen was seen), `insufficient_data` when the zone's completeness (readings that
arrived per reading expected at each sensor's logging interval) is below `reports.min_completeness`, and
`compliant` only otherwise. A gap is a finding: every stretch of a sensor's time not covered by a held
reading (a silence longer than its no-data limit, or no reading at all) is listed with its start, end
and minutes. The room whose compressor failed was called compliant from 4 readings at 0.4 %.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from daemon.reports.mkt import Segment, Summary

Verdict = Literal["compliant", "not_compliant", "insufficient_data"]
VERDICT_KEY: dict[str, str] = {
    "compliant": "report.verdict_ok",
    "not_compliant": "report.verdict_bad",
    "insufficient_data": "report.verdict_insufficient",
}


@dataclass(frozen=True, slots=True)
class Gap:
    """[start, end) of one sensor without data."""

    sensor: str
    start: float
    end: float

    @property
    def minutes(self) -> float:
        return (self.end - self.start) / 60


def gaps(tracks: Mapping[str, Sequence[Segment]], start: float, end: float) -> list[Gap]:
    """Each sensor's uncovered stretches of [start, end), in time order."""
    out: list[Gap] = []
    for sensor, segs in tracks.items():
        at = start
        for s in sorted(segs, key=lambda s: s.start):
            if s.start > at:
                out.append(Gap(sensor, at, min(s.start, end)))
            at = max(at, s.end)
        if at < end:
            out.append(Gap(sensor, at, end))
    return sorted(out, key=lambda g: (g.start, g.sensor))


def verdict(zone: Summary | None, excursions: int, min_completeness: float) -> Verdict:
    """compliant / not_compliant / insufficient_data, for a zone's temperature summary."""
    if excursions > 0 or (zone is not None and zone.minutes_out > 0):
        return "not_compliant"
    if zone is None or zone.completeness is None or zone.completeness < min_completeness:
        return "insufficient_data"
    return "compliant"
