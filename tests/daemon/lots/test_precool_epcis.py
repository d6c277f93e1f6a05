"""A precooling run reaches the lot's EPCIS 2.0 record: pulp temperatures and half / seven-eighths cooling times as
sensor reports on the event that ends the stay it cooled in, valid against GS1's schema."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.lots.epcis import Epcis
from daemon.lots.store import Lots
from daemon.lots.transfers import split
from tests.daemon.lots.test_epcis import problems
from tests.daemon.lots.test_precool import T0, ZHANG, cooling, lots  # noqa: F401 (the fixture)


def reports(element: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["cc:figure"]: r for r in element["sensorReport"]}


def precool_elements(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in body.get("sensorElementList", []) if "cc:precoolRun" in e["sensorMetadata"]]


def test_a_finished_run_is_on_the_event_that_moves_the_lot_out(lots: Lots) -> None:  # noqa: F811
    lots.check_in("SB-101", "strawberry", "pre", T0, ZHANG)
    cooling(lots.journal, 20 * 60, 70)  # half-cooling 20 min: 7/8 at 60 min
    lots.precool.evaluate(T0 + 70 * 60)  # the run ends by itself at 7/8
    lots.move("SB-101", "z1", T0 + 80 * 60, ZHANG)
    commission, move = lots.journal.lot_events.after(0, 10)
    ep = Epcis(lots)
    assert precool_elements(ep.event(commission, T0 + 90 * 60)) == []  # the run is not over at check-in
    body = ep.event(move, T0 + 90 * 60)
    assert problems(body) == []
    (el,) = precool_elements(body)
    meta, r = el["sensorMetadata"], reports(el)
    assert (meta["cc:lot"], meta["cc:zone"], meta["cc:endReason"]) == ("SB-101", "pre", "seven_eighths")
    assert r["halfCooling"]["type"] == "Time" and r["halfCooling"]["uom"] == "SEC"
    assert r["halfCooling"]["value"] == pytest.approx(1200, abs=90) and "cc:predicted" not in r["halfCooling"]
    assert r["sevenEighthsCooling"]["value"] == pytest.approx(3600, abs=120)
    assert "exception" not in r["sevenEighthsCooling"] and r["sevenEighthsTarget"]["value"] == 7200
    assert r["pulpInitial"]["value"] == pytest.approx(22.0, abs=0.3) and r["pulpInitial"]["uom"] == "CEL"
    assert len(body["sensorElementList"]) == 2  # the stay's own temperature report stays beside it


def test_a_slow_run_cut_short_by_a_split_says_predicted_and_alarm(lots: Lots) -> None:  # noqa: F811
    lots.check_in("SB-102", "strawberry", "pre", T0, ZHANG)
    cooling(lots.journal, 60 * 60, 50)  # half-cooling 1 h: 7/8 after 3 h, the target is 2 h
    split(lots, "SB-102", [("SB-102-A", None), ("SB-102-B", None)], T0 + 50 * 60, ZHANG)
    ev = next(e for e in lots.journal.lot_events.after(0, 10) if e.kind == "split")
    body = Epcis(lots).event(ev, T0 + 60 * 60)
    assert problems(body) == []
    (el,) = precool_elements(body)
    seven = reports(el)["sevenEighthsCooling"]
    assert seven["cc:predicted"] is True and seven["exception"] == "ALARM_CONDITION"
    assert seven["value"] == pytest.approx(3 * 3600, rel=0.05)
    assert el["sensorMetadata"]["cc:endReason"] == "split"
