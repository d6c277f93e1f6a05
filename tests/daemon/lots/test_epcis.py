"""Lot events as EPCIS 2.0: every kind validated against GS1's published JSON schema (tests/data/epcis), with
formats checked (URIs, date-times), the same JSON-LD shape as GS1's example events, stable event ids, and the
stay's temperature report in sensorElementList where an event ends a stay."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from daemon.lots import epcis as epcis_mod
from daemon.lots.chain import attach_transit
from daemon.lots.epcis import Epcis, event_id
from daemon.lots.store import Lots, Who
from daemon.lots.transfers import merge, split
from daemon.ports.model import Quantity, Reading
from daemon.storage.journal import Journal
from tests.conftest import make_config
from tests.daemon.lots.test_transfers import CSV, T0, TWO

DATA = Path(__file__).resolve().parents[2] / "data" / "epcis"
SCHEMA = json.loads((DATA / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
LI = Who("li", "staff")


def problems(doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in VALIDATOR.iter_errors(doc)]


def gs1_example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return doc


def test_the_validator_accepts_gs1_examples_and_checks_formats() -> None:
    for name in ("Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.3-AggregationEvent.jsonld",
                 "Example_9.6.4-TransformationEvent.jsonld"):
        assert problems(gs1_example(name)) == [], name
    doc = gs1_example("Example_9.6.1-ObjectEvent.jsonld")
    doc["epcisBody"]["eventList"][0]["eventTime"] = "yesterday at noon"  # format: date-time must be enforced
    assert any("date-time" in p for p in problems(doc))
    doc = gs1_example("Example_9.6.1-ObjectEvent.jsonld")
    doc["epcisBody"]["eventList"][0]["readPoint"]["id"] = "no uri here"  # format: uri must be enforced
    assert any("uri" in p for p in problems(doc))


@pytest.fixture
def lots(tmp_path: Path) -> Lots:
    cfg = make_config(tmp_path, TWO)
    j = Journal(tmp_path / "l.db")
    j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 9.5 if 120 <= i < 180 else 6.0, T0 + i * 60)
                       for i in range(720)])
    j.readings.append([Reading("t1", "z2", "s2", Quantity.TEMPERATURE, 6.5, T0 + i * 60) for i in range(720)])
    lots = Lots(j, cfg)
    lots.check_in("A-1", "mandarin", "z1", T0 + 3600, LI, quantity=900, unit="kg", origin="草堂镇")
    lots.move("A-1", "z2", T0 + 4 * 3600, LI)
    split(lots, "A-1", [("A-2", 400.0), ("A-3", 500.0)], T0 + 5 * 3600, LI)
    merge(lots, ["A-2", "A-3"], "A-4", T0 + 6 * 3600, LI)
    lots.check_out("A-4", T0 + 7 * 3600, LI, destination="wanzhou-02")
    lots.check_in("B-1", "mandarin", "z1", T0 + 8 * 3600, LI, source="fengjie-01")
    attach_transit(lots, "B-1", CSV, "trip.csv", T0 + 9 * 3600, LI)
    return lots


def test_every_lot_event_is_a_valid_epcis_event(lots: Lots) -> None:
    ep = Epcis(lots)
    events = lots.journal.lot_events.after(0, 100)
    assert [e.kind for e in events] == ["commission", "move", "split", "merge", "ship", "receive"]
    bodies = [ep.event(e, T0 + 10 * 3600) for e in events]
    for body in bodies:
        assert problems(body) == [], body["type"]
        assert body["@context"] == ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                                    {"cc": "https://coldchain-monitor.org/epcis/"}]
        assert body["cc:site"] == "t1" and body["eventTimeZoneOffset"] == "+08:00"
        assert problems({**body, "site": "t1"}) != []  # an extension outside a declared namespace is refused
    assert [(b["type"], b["bizStep"]) for b in bodies] == [
        ("ObjectEvent", "commissioning"), ("ObjectEvent", "storing"), ("TransformationEvent", "commissioning"),
        ("AggregationEvent", "commissioning"), ("ObjectEvent", "shipping"), ("ObjectEvent", "receiving")]
    commission, move, tr, agg, ship, receive = bodies
    assert commission["action"] == "ADD" and commission["quantityList"] == [
        {"epcClass": "urn:coldchain:lot:A-1", "quantity": 900, "uom": "KGM"}]
    assert commission["eventTime"] == "2025-11-19T17:00:00.000Z"
    assert commission["readPoint"] == {"id": "urn:coldchain:site:t1:zone:z1"} and "sensorElementList" not in commission
    report = move["sensorElementList"][0]  # the move ends the stay in z1: its report, with the warm hour
    assert report["sensorMetadata"]["cc:zone"] == "z1"
    summary, alarm = report["sensorReport"]
    assert (summary["minValue"], summary["maxValue"], summary["uom"], summary["cc:minutesOutside"]) == (6.0, 9.5,
                                                                                                       "CEL", 60.0)
    assert alarm["exception"] == "ALARM_CONDITION" and alarm["value"] == 9.5 and alarm["cc:minutes"] == 60.0
    assert tr["cc:inputLots"] == ["A-1"] and tr["cc:outputLots"] == ["A-2", "A-3"]
    assert [q["quantity"] for q in tr["outputQuantityList"]] == [400.0, 500.0]
    assert agg["parentID"] == "urn:coldchain:lot:A-4" and len(agg["sensorElementList"]) == 2
    assert ship["cc:destination"] == "wanzhou-02" and ship["destinationList"] == [
        {"type": "location", "destination": "urn:coldchain:site:wanzhou-02"}] and "bizLocation" not in ship
    assert receive["cc:source"] == "fengjie-01" and receive["sourceList"][0]["source"] == "urn:coldchain:site:fengjie-01"
    transit = receive["sensorElementList"][0]
    assert transit["sensorMetadata"]["cc:transit"] is True and transit["sensorReport"][0]["maxValue"] == 9.0


def test_same_shape_as_gs1_examples(lots: Lots) -> None:
    """Our events carry the keys GS1's own example events of each type carry (the JSON-LD shape)."""
    ep = Epcis(lots)
    ours = {b["type"]: b for b in (ep.event(e, T0 + 10 * 3600) for e in lots.journal.lot_events.after(0, 100))}
    for name, typ, keys in (("Example_9.6.1-ObjectEvent.jsonld", "ObjectEvent", {"action", "bizStep", "readPoint"}),
                            ("Example_9.6.3-AggregationEvent.jsonld", "AggregationEvent", {"parentID", "action"}),
                            ("Example_9.6.4-TransformationEvent.jsonld", "TransformationEvent",
                             {"inputQuantityList", "bizStep", "readPoint"})):
        theirs = next(e for e in gs1_example(name)["epcisBody"]["eventList"] if e["type"] == typ)
        common = {"type", "eventTime", "eventTimeZoneOffset"} | keys
        assert common <= set(theirs) and common <= set(ours[typ]), typ


def test_documents_per_lot_and_per_period_are_valid(lots: Lots) -> None:
    ep = Epcis(lots)
    doc = ep.lot_document("A-4", T0 + 10 * 3600)
    assert problems(doc) == []
    assert [e["bizStep"] for e in doc["epcisBody"]["eventList"]] == [
        "commissioning", "storing", "commissioning", "commissioning", "shipping"]  # back through its parents
    assert all("@context" not in e for e in doc["epcisBody"]["eventList"])
    period = ep.period_document(T0 + 4.5 * 3600, T0 + 7.5 * 3600, T0 + 10 * 3600)
    assert problems(period) == [] and [e["type"] for e in period["epcisBody"]["eventList"]] == [
        "TransformationEvent", "AggregationEvent", "ObjectEvent"]


def test_event_ids_are_stable_and_kept_with_the_event(lots: Lots) -> None:
    ep = Epcis(lots)
    events = lots.journal.lot_events.after(0, 100)
    first = events[0]
    a, b = ep.event(first, T0 + 10 * 3600), ep.event(first, T0 + 11 * 3600)
    assert a["eventID"] == b["eventID"] == event_id("t1", first) == f"urn:uuid:{first.uid}"
    assert uuid.UUID(str(first.uid)).version == 4  # random, not derived from the journal id
    assert a["eventID"] != "urn:uuid:" + epcis_mod.legacy_uid("t1", first.id)
    assert len({e.uid for e in events}) == len(events)


def test_a_contributor_adds_its_figures(lots: Lots, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook the precooling runs will use: an extension field on the lot's events, still valid EPCIS."""
    def precool(ev: Any, body: dict[str, Any], _lots: Lots) -> None:
        if ev.kind == "commission":
            body["cc:precooling"] = {"cc:halfCoolingMinutes": 42}

    monkeypatch.setattr(epcis_mod, "CONTRIBUTORS", [precool])
    body = Epcis(lots).event(lots.journal.lot_events.after(0, 1)[0], T0 + 10 * 3600)
    assert body["cc:precooling"] == {"cc:halfCoolingMinutes": 42} and problems(body) == []


def test_configured_sglns_are_used(tmp_path: Path) -> None:
    text = TWO.replace("site: {id: t1, name: 测试冷库}",
                       "site: {id: t1, name: 测试冷库, sgln: 'urn:epc:id:sgln:0614141.00777.0'}").replace(
        "{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}",
        "{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin, sgln: 'urn:epc:id:sgln:0614141.00777.1'}")
    lots = Lots(Journal(tmp_path / "s.db"), make_config(tmp_path, text))
    lots.check_in("S-1", "mandarin", "z1", T0, LI)
    lots.move("S-1", "z2", T0 + 60, LI)
    one, two = (Epcis(lots).event(e, T0 + 120) for e in lots.journal.lot_events.after(0, 10))
    assert one["readPoint"]["id"] == "urn:epc:id:sgln:0614141.00777.1"
    assert two["readPoint"]["id"] == "urn:epc:id:sgln:0614141.00777.0"  # z2 has none: the site's
    assert problems(one) == [] and problems(two) == []


def test_cli_exports_a_lot_and_a_period(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.app.cli import main

    (tmp_path / "config.yaml").write_text(TWO, encoding="utf-8")
    cfg = make_config(tmp_path, TWO)
    j = Journal(cfg.storage.journal)
    lots = Lots(j, cfg)
    lots.check_in("C-1", "mandarin", "z1", T0, LI)
    lots.check_out("C-1", T0 + 3600, LI, destination="wz")
    j.close()
    conf = str(tmp_path / "config.yaml")
    assert main(["epcis", "-c", conf, "--code", "C-1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert problems(doc) == [] and [e["bizStep"] for e in doc["epcisBody"]["eventList"]] == ["commissioning",
                                                                                            "shipping"]
    out = tmp_path / "period.jsonld"
    assert main(["epcis", "-c", conf, "--from", "2025-11-20T00:30", "--to", "2025-11-20T02:00", "-o", str(out)]) == 0
    period = json.loads(out.read_text(encoding="utf-8"))
    assert problems(period) == [] and [e["bizStep"] for e in period["epcisBody"]["eventList"]] == ["shipping"]
    capsys.readouterr()
    assert main(["epcis", "-c", conf, "--code", "NOPE-9"]) == 2 and "no lot NOPE-9" in capsys.readouterr().err
    assert main(["epcis", "-c", conf]) == 2 and "give --code" in capsys.readouterr().err
