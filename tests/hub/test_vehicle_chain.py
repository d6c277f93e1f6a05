"""A vehicle box's messages at the hub (real PostgreSQL), built to the contract: the chain of a code shipped from
center a onto vehicle v and on to center b is three legs (a's stay, the vehicle leg with the compartment's figures,
b's stay), in any order of arrival and with b's clock ahead; v is listed apart from the centers and its
compartments are not cold-room capacity; the pages label the vehicle leg."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub import pages, queries
from hub.web import make_app
from tests.hub.boxes import T0, event, raw, report, site_msg
from tests.hub.test_store import H, apply_all

pytestmark = pytest.mark.peer
V = {"cc:siteKind": "vehicle"}


def vehicle_report() -> list[dict[str, Any]]:
    """The unloading's report of the compartment stay, as the box writes it (daemon/lots/epcis.py)."""
    summary = {"type": "Temperature", "minValue": 5.8, "maxValue": 9.6, "meanValue": 7.1, "uom": "CEL",
               "cc:mkt": 7.4, "cc:minutesOutside": 30.0, "cc:low": 5.0, "cc:high": 8.0}
    alarm = {"type": "Temperature", "exception": "ALARM_CONDITION", "time": "2025-11-19T19:00:00.000Z", "value": 9.6,
             "uom": "CEL", "cc:kind": "high", "cc:limit": 8.0, "cc:minutes": 30.0,
             "cc:end": "2025-11-19T19:30:00.000Z", "cc:alarmState": "none"}
    return [{"sensorMetadata": {"cc:lot": "L1", "cc:zone": "c1"}, "sensorReport": [summary, alarm]}]


def messages(b_ahead_ms: int = 0) -> list[tuple[str, bytes]]:
    v_site = site_msg("v", T0, [("c1", 8.0)], name="渝A-12345 冷藏车") | {"kind": "vehicle"}
    return [
        ("coldchain/a/site", raw(site_msg("a", T0, [("z1", 40.0)]))),
        ("coldchain/b/site", raw(site_msg("b", T0, [("r1", 10.0)]))),
        ("coldchain/v/site", raw(v_site)),
        ("coldchain/v/status", raw({"state": "online", "ts": T0})),
        ("coldchain/a/events/epcis", raw(event("a", 1, "commissioning", "L1", T0, "z1", qty=1.2))),
        ("coldchain/a/events/epcis", raw(event("a", 2, "shipping", "L1", T0 + 2 * H, None, **{
            "cc:destination": "v", "sensorElementList": report(4.1, 5.2, 7.9)}))),
        ("coldchain/v/events/epcis", raw(event("v", 1, "loading", "L1", T0 + 2 * H + 60_000, "c1", qty=1.2, **V, **{
            "cc:source": "a"}))),
        ("coldchain/v/events/epcis", raw(event("v", 2, "unloading", "L1", T0 + 5 * H, None, **V, **{
            "cc:zone": "c1", "cc:destination": "b", "sensorElementList": vehicle_report()}))),
        # b's clock ahead or behind: its receiving may be stamped before v's unloading
        ("coldchain/b/events/epcis", raw(event("b", 1, "receiving", "L1", T0 + 5 * H + b_ahead_ms, "r1", qty=1.2, **{
            "cc:source": "v"}))),
    ]


def check(pg: Any) -> None:
    legs = queries.chain(pg, "L1").legs
    assert [(leg["kind"], leg["site"], leg["zone"]) for leg in legs] == [
        ("stay", "a", "z1"), ("vehicle", "v", "c1"), ("stay", "b", "r1")], legs
    a, v, b = legs
    assert a["until"] == T0 + 2 * H and a["temperature"] == {"min": 4.1, "max": 7.9, "mean": 5.2}
    assert (v["since"], v["until"]) == (T0 + 2 * H + 60_000, T0 + 5 * H)
    assert v["temperature"] == {"min": 5.8, "max": 9.6, "mean": 7.1}
    assert (v["mkt"], v["minutes_outside"], v["limits"]) == (7.4, 30.0, {"low": 5.0, "high": 8.0})
    assert [(x["kind"], x["peak"], x["minutes"]) for x in v["excursions"]] == [("high", 9.6, 30.0)]
    assert b["until"] is None


def test_a_vehicle_leg_between_two_centers(pg: Any) -> None:
    assert set(apply_all(pg, messages())) == {"stored"}
    check(pg)
    kinds = {c["site"]: c["kind"] for c in queries.centers(pg)}
    assert kinds == {"a": "center", "b": "center", "v": "vehicle"}
    assert {(r["site"], r["zone"]) for r in queries.capacity(pg)} == {("a", "z1"), ("b", "r1")}  # not v's compartment
    assert queries.place_names(pg)["v", "c1"] == "渝A-12345 冷藏车 · c1 号库"
    html = pages.region("en", queries.centers(pg), [], queries.capacity(pg), 0)
    vehicles = html.split('id="vehicles"')[1].split("</table>")[0]
    assert "渝A-12345 冷藏车" in vehicles and "online" in vehicles
    assert "渝A-12345" not in html.split('id="centers"')[1].split("</table>")[0]


@pytest.mark.parametrize("b_ahead_ms", [-90_000, 0, 90_000])
def test_the_vehicle_chain_in_any_order_and_with_clocks_apart(pg: Any, b_ahead_ms: int) -> None:
    msgs = messages(b_ahead_ms)
    random.Random(b_ahead_ms).shuffle(msgs)
    apply_all(pg, msgs)
    check(pg)


def test_the_pages_label_the_vehicle_leg(pg: Any, dsn: str) -> None:
    apply_all(pg, messages())
    web = TestClient(make_app(dsn))
    zh = web.get("/trace/L1").text
    assert "运输中（冷藏车）" in zh and "渝A-12345 冷藏车 · c1 号库" in zh and "5.8 / 7.1 / 9.6 °C" in zh
    assert "7.4 °C" in zh and "30 分钟，超限 1 次" in zh
    en = web.get("/trace/L1", params={"lang": "en"}).text
    assert "In transit (vehicle)" in en and "30 min, 1 excursion(s)" in en
    assert "a 冷库 · z1 号库" in en and "b 冷库 · r1 号库" in en
    chain = web.get("/api/chain/L1").json()
    assert [leg["kind"] for leg in chain["legs"]] == ["stay", "vehicle", "stay"]


def test_a_move_between_compartments_is_two_vehicle_legs(pg: Any) -> None:
    msgs = messages()
    unloading = next(i for i, (_, body) in enumerate(msgs) if b'"unloading"' in body)
    move = ("coldchain/v/events/epcis", raw(event("v", 3, "storing", "L1", T0 + 3 * H, "c2", qty=1.2, **V,
                                                  sensorElementList=report(5.5, 6.0, 6.5))))  # ends c1: its report
    msgs.insert(unloading, move)
    msgs = [(t, b.replace(b'"cc:zone": "c1", "cc:destination"', b'"cc:zone": "c2", "cc:destination"'))
            for t, b in msgs]  # the unloading now leaves from c2
    apply_all(pg, msgs)
    legs = queries.chain(pg, "L1").legs
    assert [(leg["kind"], leg["site"], leg["zone"]) for leg in legs] == [
        ("stay", "a", "z1"), ("vehicle", "v", "c1"), ("vehicle", "v", "c2"), ("stay", "b", "r1")]
    assert legs[1]["temperature"] == {"min": 5.5, "max": 6.5, "mean": 6.0} and legs[1]["until"] == T0 + 3 * H
    assert legs[2]["temperature"] == {"min": 5.8, "max": 9.6, "mean": 7.1} and legs[2]["mkt"] == 7.4


def test_a_lot_still_on_the_truck(pg: Any, dsn: str) -> None:
    apply_all(pg, [m for m in messages() if b'"unloading"' not in m[1] and b'"receiving"' not in m[1]])
    assert [leg["kind"] for leg in queries.chain(pg, "L1").legs] == ["stay", "vehicle"]
    row = TestClient(make_app(dsn)).get("/trace/L1").text.split("运输中（冷藏车）")[1].split("</tr>")[0]
    assert "仍在车上" in row and "—" in row  # no figures until the unloading carries them
