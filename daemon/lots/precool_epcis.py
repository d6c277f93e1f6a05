"""A lot's precooling run in its EPCIS 2.0 record: one sensor element on the event that ends the stay it cooled in.

The element says what a buyer's platform asks of precooling (预冷) in GS1's own vocabulary where it has one: the
pulp's temperature at the start and at the end (`Temperature`, °C) and the half- and seven-eighths cooling times
(`Time`, seconds, the postharvest standard figures), with the run's target; a run slower than its target carries
`exception: ALARM_CONDITION` on the seven-eighths report. What GS1 has no word for (which figure a report is, the
run's id, why it ended, a predicted rather than an observed time) goes in `cc:` extension fields, which the
schema allows. Registered through `daemon.lots.epcis.CONTRIBUTORS`, so the event builder knows nothing of
precooling; the figures are the ones stored on the run when it ended (`precool_runs.figures`).
"""

from __future__ import annotations

from typing import Any

from daemon.lots.epcis import CONTRIBUTORS, iso
from daemon.lots.store import Lots
from daemon.storage.lot_events import LotEvent
from daemon.storage.precool import RunRow


def _ended_stays(ev: LotEvent, lots: Lots) -> list[tuple[str, str, float]]:
    """(lot, room, stay start) of each stay this event ends: the lot's own, or each input's for a merge."""
    if ev.kind == "merge":
        return [(c, s["zone"], s["start"]) for c in ev.inputs for s in lots.get(c)["stays"] if s["end"] == ev.ts]
    if ev.ended_zone is None or ev.ended_start is None:
        return []
    return [(ev.lot, ev.ended_zone, ev.ended_start)]


def _time(which: str, seconds: float | None, predicted: float | None) -> dict[str, Any] | None:
    """An observed time, else the one predicted from the curve so far (marked), else nothing."""
    if seconds is not None:
        return {"type": "Time", "value": round(seconds, 1), "uom": "SEC", "cc:figure": which}
    if predicted is not None:
        return {"type": "Time", "value": round(predicted, 1), "uom": "SEC", "cc:figure": which, "cc:predicted": True}
    return None


def run_element(run: RunRow) -> dict[str, Any] | None:
    """The sensor element of one ended run (None while it is open: its figures are not final)."""
    if run.ended is None or run.figures is None:
        return None
    f = run.figures
    reports: list[dict[str, Any]] = []
    if f.get("initial_c") is not None:
        reports.append({"type": "Temperature", "time": iso(run.started), "value": f["initial_c"], "uom": "CEL",
                        "cc:figure": "pulpInitial"})
    if f.get("pulp_c") is not None:
        reports.append({"type": "Temperature", "time": iso(run.ended), "value": f["pulp_c"], "uom": "CEL",
                        "cc:figure": "pulpEnd"})
    if f.get("air_c") is not None:
        reports.append({"type": "Temperature", "value": f["air_c"], "uom": "CEL", "cc:figure": "coolingAir"})
    if (half := _time("halfCooling", f.get("half_s"), f.get("predicted_half_s"))) is not None:
        reports.append(half)
    if (seven := _time("sevenEighthsCooling", f.get("seven_eighths_s"), f.get("predicted_seven_eighths_s"))):
        if f.get("too_slow"):
            seven["exception"] = "ALARM_CONDITION"
        reports.append(seven)
    if run.target_s is not None:
        reports.append({"type": "Time", "value": run.target_s, "uom": "SEC", "cc:figure": "sevenEighthsTarget"})
    if not reports:
        return None
    meta = {"startTime": iso(run.started), "endTime": iso(run.ended), "cc:lot": run.lot, "cc:zone": run.zone,
            "cc:precoolRun": run.id, "cc:endReason": run.end_reason, "cc:state": f.get("state")}
    return {"sensorMetadata": meta, "sensorReport": reports}


def contribute(ev: LotEvent, body: dict[str, Any], lots: Lots) -> None:
    """Add the element of each run that cooled the lot during the stays this event ends."""
    elements = []
    for code, zone, start in _ended_stays(ev, lots):
        for run in reversed(lots.journal.precool.find(lot=code)):
            cooled_here = run.zone == zone and start <= run.started and run.ended is not None and run.ended <= ev.ts
            if cooled_here and (el := run_element(run)) is not None:
                elements.append(el)
    if elements:
        body["sensorElementList"] = [*body.get("sensorElementList", []), *elements]


if contribute not in CONTRIBUTORS:
    CONTRIBUTORS.append(contribute)
