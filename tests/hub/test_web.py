"""The hub's HTTP side against a real PostgreSQL: EPCIS 2.0 query and capture, tokens, the public trace page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub import store
from hub.contract import parse
from hub.web import make_app
from tests.hub.boxes import T0, alarm, event, iso, raw
from tests.hub.test_store import H, msgs

pytestmark = pytest.mark.peer
STAFF = {"Authorization": "Bearer read-secret"}
ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def web(pg: Any, dsn: str) -> TestClient:
    for topic, body in [*msgs(), ("coldchain/a/events/alarms", raw(alarm(
            "a", 9, "acknowledged", T0 + 3 * H, by="张师傅", text="张师傅 13800138000 已处理")))]:
        record = parse(topic, body)
        assert record is not None
        store.apply(pg, record, now_ms=T0 + 7 * H)
    return TestClient(make_app(dsn, read_token="read-secret", capture_token="capture-secret"))


def ids(doc: dict[str, Any]) -> list[str]:
    assert doc["type"] == "EPCISQueryDocument" and doc["schemaVersion"] == "2.0"
    return [e["cc:lot"] + "/" + e["bizStep"] for e in doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]


def test_epcis_query_parameters(web: TestClient) -> None:
    q = lambda **p: web.get("/epcis/events", params=p, headers=STAFF)  # noqa: E731
    assert ids(q(EQ_bizStep="shipping").json()) == ["L1/shipping"]
    assert ids(q(EQ_bizStep="https://ref.gs1.org/cbv/BizStep-receiving,shipping").json()) == [
        "L1/shipping", "L1/receiving"]
    assert ids(q(MATCH_epc="L1").json()) == ["L1/commissioning", "L1/shipping", "L1/receiving"]
    assert ids(q(MATCH_epc="L2").json()) == ["L2/commissioning", "L2-a/commissioning"]  # input of the split
    assert ids(q(MATCH_epc="urn:coldchain:lot:L1").json()) == ids(q(MATCH_epc="L1").json())  # the class URI too
    assert ids(q(GE_eventTime=iso(T0 + 2 * H), LT_eventTime=iso(T0 + 5 * H)).json()) == [
        "L1/shipping", "L2-a/commissioning"]
    first = q(perPage=2)
    assert first.headers["link"].endswith('rel="next"') and len(ids(first.json())) == 2
    token = first.headers["link"].split("nextPageToken=")[1].split("&")[0]
    rest = q(perPage=10, nextPageToken=token)
    assert "link" not in rest.headers and ids(first.json()) + ids(rest.json()) == ids(q().json())
    bad = q(GE_eventTime="2025-11-20T00:00")
    assert bad.status_code == 400 and "GE_eventTime" in bad.json()["detail"]["title"]
    assert web.get("/epcis/events").status_code == 401  # who acknowledged is staff's business


def test_epcis_capture_is_atomic_and_idempotent(web: TestClient) -> None:
    doc = {"@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"], "type": "EPCISDocument",
           "schemaVersion": "2.0", "creationDate": iso(T0),
           "epcisBody": {"eventList": [event("c", 1, "commissioning", "C1", T0, "k1"),
                                       {**event("c", 2, "storing", "C1", T0 + H, "k2"), "eventID": None}]}}
    assert web.post("/epcis/capture", json=doc).status_code == 403
    assert web.post("/epcis/capture", json=doc, headers={"Authorization": "Bearer read-secret"}).status_code == 403
    cap = {"Authorization": "Bearer capture-secret"}
    assert web.post("/epcis/capture", json=doc, headers=cap).json() == {"captured": 2, "duplicate": 0}
    assert web.post("/epcis/capture", json=doc, headers=cap).json() == {"captured": 0, "duplicate": 2}
    bad = {**doc, "epcisBody": {"eventList": [event("c", 3, "storing", "C2", T0, "k1"),
                                              {**event("c", 4, "storing", "C2", T0, "k1"), "cc:site": None}]}}
    got = web.post("/epcis/capture", json=bad, headers=cap)
    assert got.status_code == 400 and "eventList[1]" in got.json()["detail"]
    assert ids(web.get("/epcis/events", params={"EQ_site": "c"}, headers=STAFF).json()) == [
        "C1/commissioning", "C1/storing"]  # nothing of the refused document


def test_region_json_and_pages(web: TestClient) -> None:
    assert web.get("/api/centers").status_code == 401
    alarms = web.get("/api/alarms", headers=STAFF).json()
    assert [(a["id"], a["acked_by"], a["room"]) for a in alarms] == [("7", "zhang", "z1 号库"), ("9", "张师傅", "z1 号库")]
    page = web.get("/", params={"token": "read-secret"}).text
    assert "区域冷链平台" in page and "张师傅" in page and "在线" in page
    assert "Regional cold-chain hub" in web.get("/", params={"lang": "en"}, headers=STAFF).text
    chain = web.get("/api/chain/L2-a", headers=STAFF).json()
    assert chain["lots"] == ["L2", "L2-a"] and len(chain["events"]) == 2
    assert web.get("/api/chain/NOPE", headers=STAFF).status_code == 404


def test_public_trace_page_shows_places_not_people(web: TestClient) -> None:
    page = web.get("/trace/L1")  # no token: public
    assert page.status_code == 200
    text = page.text
    assert "a 冷库 · z1 号库" in text and "b 冷库 · r1 号库" in text and "运输中" in text
    assert "4.1 / 5.2 / 7.9 °C" in text and "6.0 / 7.0 / 8.5 °C" in text  # the stay, then the trip
    for private in ("张师傅", "zhang", "13800138000", "温度过高"):
        assert private not in text
    assert web.get("/trace/NOPE", params={"lang": "en"}).status_code == 404


def test_a_lot_checked_out_ends_its_trace(pg: Any, web: TestClient) -> None:
    for i, step in enumerate(("commissioning", "shipping")):  # shipping with no destination: sold off the chain
        record = parse("coldchain/a/events/epcis", raw(event("a", 90 + i, step, "L9", T0 + i * H, "z1")))
        assert record is not None
        store.apply(pg, record)
    text = web.get("/trace/L9", params={"lang": "zh-CN"}).text
    assert "已出库" in text and "仍在此处" not in text and "运输中" not in text
