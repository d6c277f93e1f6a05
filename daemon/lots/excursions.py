"""A lot's excursions: its own, not its rooms'.

Each is a run of time the room's temperature spent outside the LOT's range (its commodity's, with
the room's override when the room stores that same commodity), clipped to the lot's stay. Below the
minimum (chilling injury for chilling-sensitive goods) counts as well as above the maximum. Each run
names the room alarm that covered it, if any, with that alarm's real state: acknowledged is not
resolved. Runs shorter than the room's alarm delay (a door opening) count in the minutes out of range
but are not listed. The trace page listed "too warm 157 min, handled" for a lot that stayed 31 min
while the alarm was still open, and nothing for 126 min below the mandarin's chilling limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from daemon.reports.excursions import Excursion
from daemon.reports.mkt import Segment

HIGH_KINDS = frozenset({"temp_high", "band", "exposure", "rate"})
LOW_KINDS = frozenset({"temp_low", "freeze"})


@dataclass(frozen=True, slots=True)
class LotExcursion:
    """One run outside the lot's range during one stay."""

    zone: str
    kind: str  # temp_high (above the lot's maximum) or temp_low (below its minimum)
    start: float
    end: float
    minutes: float
    peak: float
    limit: float
    alarm_id: int | None  # the room alarm that covered it; None: the room raised none (other limits)
    alarm_state: str | None  # firing, acknowledged, resolved (as the journal has it now)
    acked: float | None
    acked_by: str | None

    def json(self) -> dict[str, Any]:
        return asdict(self)


def _runs(tracks: Sequence[Sequence[Segment]], above: bool, limit: float) -> list[tuple[float, float, float]]:
    """(start, end, peak) of the union over sensors of held time beyond `limit`."""
    out_segs = sorted((s for segs in tracks for s in segs if (s.value > limit if above else s.value < limit)),
                      key=lambda s: s.start)
    runs: list[list[float]] = []
    for s in out_segs:
        if runs and s.start <= runs[-1][1]:
            r = runs[-1]
            r[1] = max(r[1], s.end)
            r[2] = max(r[2], s.value) if above else min(r[2], s.value)
        else:
            runs.append([s.start, s.end, s.value])
    return [(a, b, p) for a, b, p in runs]


def _alarm(alarms: Sequence[Excursion], kinds: frozenset[str], a: float, b: float, now: float) -> Excursion | None:
    return next((x for x in alarms if x.kind in kinds and x.start < b and (x.end if x.end is not None else now) > a),
                None)


def lot_excursions(zone: str, tracks: Sequence[Sequence[Segment]], low: float | None, high: float | None,
                   alarms: Sequence[Excursion], *, min_seconds: float, now: float) -> list[LotExcursion]:
    """The lot's runs outside [low, high] in one stay (tracks already clipped to it), oldest first."""
    out: list[LotExcursion] = []
    for kind, above, limit, kinds in (("temp_high", True, high, HIGH_KINDS), ("temp_low", False, low, LOW_KINDS)):
        if limit is None:
            continue
        for a, b, peak in _runs(tracks, above, limit):
            if b - a < min_seconds:
                continue
            al = _alarm(alarms, kinds, a, b, now)
            out.append(LotExcursion(zone, kind, a, b, (b - a) / 60, peak, limit, al.id if al else None,
                                    al.state if al else None, al.acked if al else None, al.acked_by if al else None))
    return sorted(out, key=lambda x: x.start)
