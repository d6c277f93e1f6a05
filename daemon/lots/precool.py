"""Precooling runs (预冷): started by staff or by a lot's check-in into a precooling room, followed from the journal.

A run belongs to one room (`zones[].precool` names its pulp probes and supply-air sensors) and, if it cools a lot,
to that lot. Its figures (`daemon/reports/cooling.py`) are computed from the readings in the journal, so only
received readings count. While it is open, `evaluate()` (the daemon, every minute) decides whether it is too slow
for its target (the room's, else the commodity's from config/precooling.csv) and raises or clears the
`precool_slow` alarm through the alert manager like any other alarm (stored, then SMS); the run ends by itself when
the pulp reaches 7/8 cooling, when staff stop it, or when its lot leaves the room, and its figures at that moment
are stored on the run. `lot_runs()` is the one function the lot record, the trace page and EPCIS read.
"""

from __future__ import annotations

from typing import Any

from daemon.alarms.rules import Action, RuleEvent
from daemon.config.catalog import load_catalog, precool_targets
from daemon.config.schema import AppConfig, ZoneConfig
from daemon.reports.cooling import CoolingFigures, Point, figures
from daemon.storage.db import Tx
from daemon.storage.journal import Journal
from daemon.storage.precool import RunRow

KIND = "precool_slow"
MAX_READINGS = 50_000  # per sensor and run: a day at one reading every two seconds


class PrecoolError(ValueError):
    """A run operation refused; `status` is the HTTP status it maps to."""

    status = 422


class PrecoolConflict(PrecoolError):
    status = 409


class PrecoolNotFound(PrecoolError):
    status = 404


def alarm_key(run: RunRow) -> str:
    return f"{run.zone}/precool/{run.id}"


class Precooling:
    """Runs on the journal (blocking: call from a thread in async code)."""

    def __init__(self, journal: Journal, cfg: AppConfig) -> None:
        self.journal = journal
        self.cfg = cfg

    def room(self, zone: str) -> ZoneConfig:
        z = next((x for x in self.cfg.zones if x.id == zone), None)
        if z is None:
            raise PrecoolNotFound(f"no zone {zone!r}")
        if z.precool is None:
            rooms = ", ".join(x.id for x in self.cfg.zones if x.precool) or "none configured"
            raise PrecoolError(f"zone {zone!r} is not a precooling room (zones[].precool); precooling rooms: {rooms}")
        return z

    def target_s(self, zone: ZoneConfig, commodity: str | None) -> float | None:
        """The room's own target, else the commodity's; None: the run is measured, never called too slow."""
        if zone.precool is not None and zone.precool.seven_eighths_target is not None:
            return zone.precool.seven_eighths_target
        t = precool_targets().get(commodity or "")
        return None if t is None else t.seven_eighths_h * 3600

    # -- start and end

    def start_in(self, tx: Tx, zone: str, started: float, who: str, how: str, *, lot: str | None = None,
                 commodity: str | None = None) -> int:
        """Open a run in the caller's transaction (a check-in's); refused while the room has one open."""
        z = self.room(zone)
        runs = self.journal.precool
        cur = runs.open_in(tx, zone)
        if cur is not None:
            raise PrecoolConflict(f"zone {zone!r} already has precooling run {cur.id} open (started "
                                  f"{cur.started:.0f}{', lot ' + cur.lot if cur.lot else ''})")
        commodity = commodity or z.commodity
        if commodity is not None and commodity not in load_catalog():
            raise PrecoolError(f"unknown commodity {commodity!r}")
        return runs.insert(tx, zone, lot, commodity, started, who, how, self.target_s(z, commodity))

    def start(self, zone: str, now: float, who: str, *, role: str = "staff", lot: str | None = None,
              commodity: str | None = None, at: float | None = None) -> dict[str, Any]:
        """Staff start a run from the page or the API (at `at`, if earlier: when the produce went in)."""
        if at is not None and (at > now + 60 or at < now - 86400):
            raise PrecoolError("a run's start must be within the last 24 h and not in the future")
        with self.journal.transaction() as tx:
            if lot is not None:
                lot_commodity = self.journal.lots.commodity(tx, lot)
                if lot_commodity is None:
                    raise PrecoolNotFound(f"no lot {lot}")
                commodity = commodity or lot_commodity
            rid = self.start_in(tx, zone, min(at, now) if at is not None else now, who, "manual", lot=lot,
                                commodity=commodity)
            self.journal.audit.add(tx, now, who, role, "precool.start", zone, {"run": rid, "lot": lot})
        return self.view(rid, now)

    def stop(self, run_id: int, now: float, who: str, role: str = "staff") -> dict[str, Any]:
        """Staff end a run before 7/8 (the produce went on to storage); its figures so far are kept."""
        run = self._get(run_id)
        if run.ended is not None:
            raise PrecoolConflict(f"precooling run {run_id} already ended")
        f = self.figures(run, now)
        with self.journal.transaction() as tx:
            self.journal.precool.end(tx, run.id, now, who, "stopped", self.summary(run, f))
            self.journal.audit.add(tx, now, who, role, "precool.stop", run.zone, {"run": run.id, "lot": run.lot})
        return self.view(run.id, now)

    def arrived(self, tx: Tx, zone: str, lot: str, commodity: str, when: float, who: str) -> int | None:
        """A lot checked or moved into `zone`: a run starts if the room is a precooling room that starts runs on
        check-in and has none open (one probe set, one run: a second lot is not measured). The run's id, or None."""
        z = next((x for x in self.cfg.zones if x.id == zone), None)
        if z is None or z.precool is None or not z.precool.start_on_check_in:
            return None
        if self.journal.precool.open_in(tx, zone) is not None:
            return None
        return self.start_in(tx, zone, when, who, "check_in", lot=lot, commodity=commodity)

    def lot_left(self, tx: Tx, lot: str, when: float, who: str, final: dict[str, Any] | None,
                 reason: str = "lot_left") -> None:
        """The lot moved out, was checked out, split or merged (`reason`): its open run ends then, in the caller's
        transaction. A split's children or a merge's result start no run: their produce is already partly cooled,
        and a run from there would report a half-cooling time the produce never had."""
        run = self.journal.precool.open_of_lot(tx, lot)
        if run is not None:
            self.journal.precool.end(tx, run.id, when, who, reason, final or {})

    def final_for_lot(self, lot: str, when: float) -> dict[str, Any] | None:
        """The figures an open run of `lot` would end with at `when` (read before the lot's transaction)."""
        run = next(iter(self.journal.precool.find(lot=lot, open_only=True, limit=1)), None)
        return None if run is None else self.summary(run, self.figures(run, when))

    # -- figures

    def _get(self, run_id: int) -> RunRow:
        run = self.journal.precool.get(run_id)
        if run is None:
            raise PrecoolNotFound(f"no precooling run {run_id}")
        return run

    def _points(self, zone: str, sensors: list[str], start: float, end: float) -> dict[str, list[Point]]:
        out: dict[str, list[Point]] = {}
        for sid in sensors:
            rows = self.journal.readings.query(zone=zone, sensor=sid, quantity="temperature", start=start,
                                               end=end + 0.001, limit=MAX_READINGS)
            out[sid] = [(r.ts, r.value) for r in rows if r.good and r.value is not None]
        return out

    def figures(self, run: RunRow, now: float) -> tuple[str | None, CoolingFigures]:
        """(pulp probe, figures) of the least cooled probe (the produce is as cool as its warmest part)."""
        z = next((x for x in self.cfg.zones if x.id == run.zone), None)
        end = run.ended if run.ended is not None else now
        if z is None or z.precool is None:
            return None, CoolingFigures("waiting", f"zone {run.zone!r} is no longer a precooling room", run.started,
                                        end)
        air_by = self._points(run.zone, z.precool.supply_air, run.started - 3600, end)
        air = sorted(p for pts in air_by.values() for p in pts)
        probes = [(sid, figures(pts, air, run.started, end))
                  for sid, pts in self._points(run.zone, z.precool.pulp, run.started, end).items()]
        measured = [p for p in probes if p[1].y is not None]
        if not measured:
            return probes[0] if probes else (None, CoolingFigures("waiting", "no pulp probe", run.started, end))
        return max(measured, key=lambda p: p[1].y or 0.0)

    def summary(self, run: RunRow, probe_figures: tuple[str | None, CoolingFigures]) -> dict[str, Any]:
        """The run's figures as stored and shown: the cooling figures, the target and whether it was too slow."""
        probe, f = probe_figures
        return {**f.json(), "probe": probe, "target_s": run.target_s, "too_slow": too_slow(f, run.target_s)}

    def view(self, run_id: int, now: float) -> dict[str, Any]:
        """A run with its figures (stored ones once it ended, computed from the journal while it is open)."""
        run = self._get(run_id)
        return run_json(run, run.figures if run.ended is not None else self.summary(run, self.figures(run, now)))

    def runs(self, now: float, *, zone: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
        return [self.view(r.id, now) for r in self.journal.precool.find(zone=zone, open_only=open_only)]

    def lot_runs(self, lot: str, now: float) -> list[dict[str, Any]]:
        """Every precooling run of a lot, oldest first, with its figures: for the lot record, its trace page and
        EPCIS (one function, so they cannot disagree)."""
        return [self.view(r.id, now) for r in reversed(self.journal.precool.find(lot=lot))]

    # -- the daemon's minute

    def evaluate(self, now: float) -> list[RuleEvent]:
        """Every open run: end it at 7/8 cooling; raise (or clear) its too-slow alarm. The alert manager ignores a
        fire for an alarm already open and a clear for none, so repeating an event each minute is harmless."""
        events: list[RuleEvent] = []
        for run in self.journal.precool.find(open_only=True):
            probe, f = self.figures(run, now)
            slow = too_slow(f, run.target_s)
            hours = _hours(f.seven_eighths_s if f.seven_eighths_s is not None else f.predicted_seven_eighths_s
                           if f.predicted_seven_eighths_s is not None else now - run.started)
            target_h = None if run.target_s is None else run.target_s / 3600
            if f.state == "done":
                with self.journal.transaction() as tx:
                    self.journal.precool.end(tx, run.id, now, "system", "seven_eighths", self.summary(run, (probe, f)))
                events.append(self._event("clear", run, probe, now, hours, target_h))
            elif slow:
                events.append(self._event("fire", run, probe, now, hours, target_h))
        return events + self._ended_alarms(now)

    def _ended_alarms(self, now: float) -> list[RuleEvent]:
        """Clear the alarm of a run that staff stopped or whose lot left (those paths do not reach the alarms)."""
        out = []
        for a in self.journal.alerts.find(open_only=True, limit=100_000):
            if a.kind != KIND or not a.key.rsplit("/", 1)[-1].isdigit():
                continue
            run = self.journal.precool.get(int(a.key.rsplit("/", 1)[-1]))
            if run is None or run.ended is not None:
                f = (run.figures or {}) if run else {}
                secs = f.get("seven_eighths_s") or f.get("predicted_seven_eighths_s")
                out.append(RuleEvent("clear", a.key, a.zone, a.sensor or "", KIND, "warning", now, a.started,
                                     _hours(secs), a.limit_value))
        return out

    @staticmethod
    def _event(action: Action, run: RunRow, probe: str | None, now: float, hours: float | None,
               target_h: float | None) -> RuleEvent:
        return RuleEvent(action, alarm_key(run), run.zone, probe or "", KIND, "warning",
                         now, run.started, hours, target_h, None, f"precool.slow|lot={run.lot or '-'}|run={run.id}")


def too_slow(f: CoolingFigures, target_s: float | None) -> bool:
    """Past the target without 7/8, or a fitted curve that will not reach 7/8 in time, or 7/8 reached late."""
    if target_s is None:
        return False
    if f.seven_eighths_s is not None:
        return f.seven_eighths_s > target_s
    if f.as_of - f.start > target_s:
        return True
    return f.state == "predicting" and (f.predicted_seven_eighths_s or 0.0) > target_s


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def run_json(run: RunRow, figs: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": run.id, "zone": run.zone, "lot": run.lot, "commodity": run.commodity, "started": run.started,
            "started_by": run.started_by, "how": run.how, "target_s": run.target_s, "ended": run.ended,
            "ended_by": run.ended_by, "end_reason": run.end_reason, "open": run.ended is None, "figures": figs}


PUBLIC_RUN = ("zone", "commodity", "started", "ended", "end_reason", "target_s")
PUBLIC_FIGURES = ("state", "initial_c", "air_c", "half_s", "seven_eighths_s", "half_fit_s", "predicted_half_s",
                  "predicted_seven_eighths_s", "too_slow", "target_s")


def public_run(run: dict[str, Any]) -> dict[str, Any]:
    """What a buyer sees of a run: no staff names."""
    f = run["figures"] or {}
    return {**{k: run[k] for k in PUBLIC_RUN}, "figures": {k: f.get(k) for k in PUBLIC_FIGURES}}
