"""Our EPCIS events as JSON-LD: expanded with GS1's own context (a local copy, tests/data/epcis), every term
we write keeps its meaning: none is dropped as undefined, bizSteps become CBV IRIs, `cc:` fields our IRIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyld import jsonld

from daemon.lots.epcis import Epcis
from tests.daemon.lots.test_epcis import lots
from tests.daemon.lots.test_transfers import T0

__all__ = ["lots"]
DATA = Path(__file__).resolve().parents[2] / "data" / "epcis"
CONTEXT = json.loads((DATA / "epcis-context.jsonld").read_text(encoding="utf-8"))
EPCIS = "https://ref.gs1.org/epcis/"


def loader(url: str, options: Any = None) -> dict[str, Any]:
    assert url == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", url  # nothing else fetched
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": CONTEXT}


def expanded(event: dict[str, Any]) -> dict[str, Any]:
    out: list[dict[str, Any]] = jsonld.expand(event, {"documentLoader": loader})
    assert len(out) == 1
    return out[0]


def dropped(event: dict[str, Any]) -> int:
    """How many of the event's own keys JSON-LD expansion dropped (an undefined term is silently lost)."""
    return len(event) - 1 - len(expanded(event))  # - 1: @context itself


def test_a_gs1_example_expands_whole_and_an_undefined_term_is_caught() -> None:
    doc = json.loads((DATA / "Example_9.6.1-ObjectEvent.jsonld").read_text(encoding="utf-8"))
    event = {"@context": doc["@context"], **doc["epcisBody"]["eventList"][0]}
    assert dropped(event) == 0
    assert dropped({**event, "site": "t1"}) == 1  # the check can fail


def test_every_term_of_our_events_keeps_its_meaning(lots) -> None:  # type: ignore[no-untyped-def]
    ep = Epcis(lots)
    for ev in lots.journal.lot_events.after(0, 100):
        body = ep.event(ev, T0 + 10 * 3600)
        assert dropped(body) == 0, body["type"]
        x = expanded(body)
        assert x["@type"] == [EPCIS + body["type"]]
        assert x[EPCIS + "bizStep"] == [{"@id": f"https://ref.gs1.org/cbv/BizStep-{body['bizStep']}"}]
        assert x["https://coldchain-monitor.org/epcis/site"] == [{"@value": "t1"}]
        assert x["https://coldchain-monitor.org/epcis/lot"] == [{"@value": ev.lot}]
        if "sensorElementList" in body:
            (element,) = x[EPCIS + "sensorElementList"][:1]
            assert EPCIS + "sensorReport" in element and EPCIS + "sensorMetadata" in element
            report = element[EPCIS + "sensorReport"][0]
            assert EPCIS + "minValue" in report and "https://coldchain-monitor.org/epcis/minutesOutside" in report
