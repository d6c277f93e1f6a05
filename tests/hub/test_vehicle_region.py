"""A vehicle box on the road between two centers, real peers all the way: three box daemons (center A, the reefer
truck V running the same daemon with `site.kind: vehicle`, center B) publish through Mosquitto to a hub worker on
PostgreSQL. A lot checked in at A is shipped to V, loaded into its compartment, shipped on to B and received there.
V's link to the broker goes through a TCP relay the test cuts (a 4G drop on the road) while V unloads the lot and
B receives it; back online, V back-fills and the hub's chain is A's stay, the vehicle leg with the compartment's
figures as V computed them from its readings, and B's stay. The public trace page shows the places and none of
the people or phone numbers in the data (contacts, an alarm acknowledged with a comment naming the driver)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hub.region_demo import VEHICLE, Region, call, vehicle_config, wait
from tests.conftest import free_port
from tests.hub.test_region import DEMO, VALIDATOR, forget, get
from tests.peers import Mosquitto

pytestmark = pytest.mark.peer
CODE = "RG-V1"
DRIVER = {"id": "wang", "name": "王司机", "phone": "+8613700137000"}
ACK = "王司机 13700137000 已重启冷机"


class Relay:
    """A TCP relay to the broker that can be cut like a 4G link: `cut()` closes every connection and refuses new
    ones (the broker sees the box's connection die and publishes its Last Will), `restore()` listens again."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self.conns: list[socket.socket] = []
        self.server: socket.socket | None = None
        self.lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(8)
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self.server is not None
        with contextlib.suppress(OSError):  # wakes the accept() of the thread (a close alone leaves it listening)
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def hub(dsn: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(sites by id, the legs of CODE, the region's open alarms) from the hub's PostgreSQL."""
    import psycopg

    from hub import queries

    with psycopg.connect(dsn) as conn:
        return ({c["site"]: c for c in queries.centers(conn)}, queries.chain(conn, CODE).legs,
                queries.open_alarms(conn))


def page(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
        text: str = resp.read().decode("utf-8")
    return text


def test_a_vehicle_box_between_two_centers(dsn: str, broker: Mosquitto, tmp_path: Path) -> None:
    region = Region(tmp_path, DEMO, speed=120)
    region.broker_port, region.dsn = broker.port, dsn
    relay = Relay(broker.port)
    truck, _ = VEHICLE
    hub_port = free_port()
    try:
        region.start_hub(hub_port)
        region.start_box(0, free_port())
        v_cfg = vehicle_config(region.base, relay.port, setpoint=9.0)  # above mandarin's 8 °C all the way
        v_cfg["contacts"].append(DRIVER)
        v_cfg["escalation"]["steps"][0]["contacts"].append("wang")
        region.start_box(-1, free_port(), v_cfg)
        region.start_box(1, free_port())
        region.wait_boxes()
        (a, _), (_, v_port), (b, _) = region.boxes
        mine = (a, truck, b)  # the session's broker may hold other tests' retained sites: they are not asserted
        wait(lambda: {s: c["kind"] for s, c in hub(dsn)[0].items() if c["state"] == "online" and s in mine} == {
            a: "center", truck: "vehicle", b: "center"}, 240, "three boxes online, V a vehicle")
        the_trip(region, hub_port, relay)
        wait(lambda: [(x["kind"], x["site"]) for x in hub(dsn)[1]] == [("stay", a), ("vehicle", truck), ("stay", b)]
             and hub(dsn)[1][1]["temperature"] is not None, 240, "V's back-fill: three legs")
        check_chain(dsn, v_port, hub_port, (a, truck, b))
        check_pages(dsn, v_port, hub_port)
    finally:
        region.stop()
        relay.cut()
        forget(broker, ["center-1", "center-2", truck])


def the_trip(region: Region, hub_port: int, relay: Relay) -> None:
    """A ships the lot to V, V loads it; V's alarm is acknowledged with a comment naming the driver; V's link is
    cut, V unloads it to B and B receives it; a few seconds later the link is back."""
    (a, a_port), (truck, v_port), (b, b_port) = region.boxes
    dsn = region.dsn
    call(a_port, "POST", "/api/v1/lots", {"code": CODE, "commodity": "mandarin", "zone": "mandarin",
                                          "quantity": 1200, "unit": "kg", "origin": "草堂镇"})
    time.sleep(2)
    call(a_port, "POST", f"/api/v1/lots/{CODE}/checkout", {"destination": truck})
    call(v_port, "POST", "/api/v1/lots", {"code": CODE, "commodity": "mandarin", "zone": "reefer",
                                          "quantity": 1200, "unit": "kg", "source": a})
    # the compartment is above the lot's range: V's alarm is open at the hub; acknowledged on V with a comment
    wait(lambda: any(x["site"] == truck for x in hub(dsn)[2]), 240, "V's alarm at the hub")
    (alert,) = [x for x in call(v_port, "GET", "/api/v1/alerts?open=true")["alerts"] if x["zone"] == "reefer"]
    call(v_port, "POST", f"/api/v1/alerts/{alert['id']}/ack", {"comment": ACK})
    wait(lambda: any(x["site"] == truck and x["acked_by"] for x in hub(dsn)[2]), 240, "the ack at the hub")

    relay.cut()  # 4G gone on the road
    wait(lambda: hub(dsn)[0][truck]["state"] == "offline", 240, "V offline by its Last Will")
    time.sleep(2)
    call(v_port, "POST", f"/api/v1/lots/{CODE}/checkout", {"destination": b})
    call(b_port, "POST", "/api/v1/lots", {"code": CODE, "commodity": "mandarin", "zone": "mandarin",
                                          "quantity": 1200, "unit": "kg", "source": truck})
    wait(lambda: hub(dsn)[1][-1]["site"] == b, 240, "B's receiving at the hub")
    assert "unloading" not in json.dumps(get(hub_port, f"/api/chain/{CODE}")["events"])  # V has not sent it
    time.sleep(3)
    relay.restore()


def check_chain(dsn: str, v_port: int, hub_port: int, sites: tuple[str, str, str]) -> None:
    """The vehicle leg's figures are V's own record of the stay; the EPCIS query for the code is valid."""
    a, truck, b = sites
    found, (at_a, at_v, at_b), _ = hub(dsn)
    assert found[truck]["state"] == "online" and found[truck]["lag_ms"] is not None
    mine = [x for x in call(v_port, "GET", f"/api/v1/lots/{CODE}/chain")["legs"] if x["kind"] == "stay"]
    (own,) = mine  # V's own record of the compartment stay, from its readings
    t = own["temperature"]
    assert at_v["zone"] == "reefer" and abs(at_v["since"] - own["start"] * 1000) < 1  # eventTime keeps ms
    assert abs(at_v["until"] - own["end"] * 1000) < 1
    assert at_v["temperature"] == {"min": t["min"], "max": t["max"], "mean": t["mean"]}
    assert at_v["mkt"] == t["mkt"] and at_v["minutes_outside"] == round(t["minutes_out"], 1)
    assert t["min"] > 8.0 and at_v["minutes_outside"] > 0.8 * (at_v["until"] - at_v["since"]) / 60_000, at_v
    assert at_v["limits"] == {"low": 5.0, "high": 8.0} and len(at_v["excursions"]) == len(own["excursions"]) >= 1
    assert at_a["until"] is not None and at_a["until"] <= at_v["since"] + 60_000  # clocks agree to the second
    assert at_a["temperature"] is not None and at_b["until"] is None

    doc = get(hub_port, f"/epcis/events?MATCH_epc={CODE}")
    assert [f"{e.path}: {e.message[:200]}" for e in VALIDATOR.iter_errors(doc)] == []
    steps = [(e["bizStep"], e["cc:site"], e.get("cc:siteKind")) for e in
             doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
    assert sorted(steps, key=str) == sorted([("commissioning", a, None), ("shipping", a, None),
                                             ("loading", truck, "vehicle"), ("unloading", truck, "vehicle"),
                                             ("receiving", b, None)], key=str)


def check_pages(dsn: str, v_port: int, hub_port: int) -> None:
    """The region lists V apart; the public pages show places, none of the names and numbers the hub holds."""
    import psycopg

    truck, _ = VEHICLE
    region_page = page(hub_port, "/?lang=zh-CN")
    vehicles = region_page.split('id="vehicles"')[1].split("</table>")[0]
    assert "渝A-12345 冷藏车" in vehicles and "在线" in vehicles
    assert "冷藏厢" not in region_page.split('id="capacity"')[1]  # not a cold room of the region

    trace = page(hub_port, f"/trace/{CODE}")
    for place in ("草堂镇冷库 · 2号库", "渝A-12345 冷藏车 · 冷藏厢", "万州中转库 · 2号库", "运输中（冷藏车）"):
        assert place in trace, place
    for private in ("王司机", "13700137000", "张师傅", "13800138000", "Manager Li", "13900139000", "zhang",
                    "已重启冷机", "wang"):
        assert private not in trace, private
    own_page = page(v_port, f"/trace/{CODE}")  # the vehicle box's own public page says vehicle, compartment
    assert "车辆" in own_page and "车厢" in own_page and "冷藏厢" in own_page and "车载温度监测" in own_page
    assert "Compartment" in page(v_port, f"/trace/{CODE}?lang=en")
    for private in ("王司机", "13700137000", "张师傅", "zhang", "已重启冷机"):
        assert private not in own_page, private
    # the hub does hold them: who acknowledged V's alarm, and the comment naming the driver and his phone
    assert any(x["site"] == truck and "zhang" in (x["acked_by"] or "") for x in hub(dsn)[2]), hub(dsn)[2]
    with psycopg.connect(dsn) as conn:
        texts = [r[0] for r in conn.execute("SELECT text FROM alarm_changes WHERE site = %s", (truck,))]
    assert any(ACK in (x or "") for x in texts), texts
