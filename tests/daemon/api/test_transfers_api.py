"""Transfers over HTTP (staff role): ship with a destination, receive from a source, split, merge, a logger's
file for the trip, the chain of custody, and EPCIS 2.0 documents per lot and per period, valid against GS1's
schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.daemon.api.test_history_api import STAFF, running

__all__ = ["running"]
DATA = Path(__file__).resolve().parents[2] / "data" / "epcis"
VALIDATOR = jsonschema.Draft7Validator(json.loads((DATA / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8")),
                                       format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
DAY = "2026-11-20"  # T0 + YEAR is 2026-11-20 00:00 in Asia/Shanghai


@pytest.mark.asyncio
async def test_ship_split_merge_transit_and_epcis_over_http(running) -> None:  # type: ignore[no-untyped-def]
    _, clock, http = running
    clock.advance(10 * 3600)
    lot = {"code": "H-1", "commodity": "mandarin", "zone": "z1", "quantity": 600, "unit": "kg", "at": f"{DAY}T07:00"}
    assert (await http.post("/api/v1/lots", json=lot, headers=STAFF)).status_code == 201
    r = await http.post("/api/v1/lots/H-1/split", json={"children": [{"code": "H-2", "quantity": 200},
                                                                     {"code": "H-3", "quantity": 400}],
                                                        "at": f"{DAY}T08:00"}, headers=STAFF)
    assert r.status_code == 200 and [x["code"] for x in r.json()["lots"]] == ["H-2", "H-3"]
    assert (await http.post("/api/v1/lots/merge", json={"codes": ["H-2"], "code": "H-4"},
                            headers=STAFF)).status_code == 422
    m = await http.post("/api/v1/lots/merge", json={"codes": ["H-2", "H-3"], "code": "H-4", "zone": "z2",
                                                    "at": f"{DAY}T09:00"}, headers=STAFF)
    assert m.status_code == 201 and m.json()["quantity"] == 600
    assert (await http.post("/api/v1/lots/H-4/transit", content="time,temperature_c\n", headers=STAFF)
            ).status_code == 409  # not shipped yet
    out = await http.post("/api/v1/lots/H-4/checkout", json={"destination": "wanzhou-02"}, headers=STAFF)
    assert out.status_code == 200 and out.json()["destination"] == "wanzhou-02"
    bad = await http.post("/api/v1/lots/H-4/transit", params={"filename": "trip.csv"},
                          content="time,temperature_c\n2026-11-20T10:10,4\n2026-11-20T10:20,warm\n", headers=STAFF)
    assert bad.status_code == 422 and "trip.csv:3: temperature_c 'warm' is not a number" in bad.json()["detail"]
    good = await http.post("/api/v1/lots/H-4/transit", params={"filename": "trip.csv", "logger": "TT-1"},
                           content="time,temperature_c\n2026-11-20T09:10,4\n2026-11-20T09:20,4.5\n", headers=STAFF)
    assert good.status_code == 201 and good.json()["readings"] == 2
    chain = (await http.get("/api/v1/lots/H-4/chain", headers=STAFF)).json()
    assert [(leg["kind"], leg["lot"]) for leg in chain["legs"]] == [
        ("stay", "H-1"), ("stay", "H-2"), ("stay", "H-3"), ("stay", "H-4"), ("transit", "H-4")]
    doc = await http.get("/api/v1/epcis/lots/H-4", headers=STAFF)
    assert doc.status_code == 200 and doc.headers["content-type"].startswith("application/ld+json")
    body = doc.json()
    assert [p.message for p in VALIDATOR.iter_errors(body)] == []
    assert [e["type"] for e in body["epcisBody"]["eventList"]] == [
        "ObjectEvent", "TransformationEvent", "AggregationEvent", "ObjectEvent"]
    period = await http.get("/api/v1/epcis/events", params={"from": f"{DAY}T07:30", "to": f"{DAY}T08:30"},
                            headers=STAFF)
    assert [e["type"] for e in period.json()["epcisBody"]["eventList"]] == ["TransformationEvent"]
    assert (await http.get("/api/v1/epcis/events", params={"from": f"{DAY}T09:00", "to": f"{DAY}T08:00"},
                           headers=STAFF)).status_code == 422
    assert (await http.get("/api/v1/epcis/lots/NOPE-1", headers=STAFF)).status_code == 404
    assert (await http.get("/api/v1/epcis/lots/H-4")).status_code == 401
    rcv = {"code": "R-1", "commodity": "mandarin", "zone": "z1", "source": "fengjie-01"}
    got = await http.post("/api/v1/lots", json=rcv, headers=STAFF)
    assert got.status_code == 201 and got.json()["source"] == "fengjie-01"
