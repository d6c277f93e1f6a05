"""The box side of the box-to-hub contract against a real Mosquitto: the retained `site` message, lot events
as EPCIS 2.0 on `events/epcis` and alarm state changes on `events/alarms`, forwarded from the journal with
their own cursors. A box offline, then back: everything arrives in journal order, none lost; a resend (the
cursor lost, as after a crash before it was committed) repeats the same eventIDs."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from daemon.app.runtime import site_info
from daemon.forwarding.forwarder import Forwarder, stop_all
from daemon.lots.epcis import uplink_source
from daemon.lots.store import Lots, Who
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage.alerts import NewAlert
from daemon.storage.journal import Journal
from drivers.sinks.mqtt_uplink import MqttUplinkSink
from tests.conftest import make_config
from tests.daemon.lots.test_transfers import TWO
from tests.drivers.sinks.mqtt_uplink.test_uplink import Subscriber, uplink
from tests.peers import Mosquitto, wait_until

pytestmark = [pytest.mark.peer]
T0 = 1_763_568_000.0
DATA = Path(__file__).resolve().parents[3] / "data" / "epcis"
VALIDATOR = jsonschema.Draft7Validator(json.loads((DATA / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8")),
                                       format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
SITE = TWO.replace("site: {id: t1, name: 测试冷库}",
                   "site: {id: t1, name: 测试冷库, location: {lat: 31.02, lon: 109.46}}").replace(
    "{id: z2, name: 2号库, name_en: Room 2, commodity: mandarin}",
    "{id: z2, name: 2号库, name_en: Room 2, commodity: mandarin, capacity: {value: 40, unit: t}}")


def box(tmp_path: Path) -> tuple[Journal, Lots]:
    """A box's journal with six lot events and five alarm audit entries (four are state changes)."""
    cfg = make_config(tmp_path, SITE)
    j = Journal(tmp_path / "box.db")
    j.readings.append([Reading("t1", "z2", "s2", Quantity.TEMPERATURE, 6.5, T0 + 3000 + i * 60) for i in range(90)])
    lots = Lots(j, cfg)
    li = Who("li", "staff")
    for n in range(2):
        lots.check_in(f"L-{n}", "mandarin", "z1", T0 + n * 60, li, quantity=100, unit="kg")
        lots.move(f"L-{n}", "z2", T0 + 3600 + n * 60, li)
        lots.check_out(f"L-{n}", T0 + 7200 + n * 60, li, destination="wanzhou-02")
    with j.transaction() as tx:
        aid = j.alerts.insert(tx, NewAlert("z1:temp_high", "z1", "s1", "temp_high", "critical", T0, 9.5, 8.0, 9.5,
                                           None), "firing")
        for k, (state, who) in enumerate((("firing", "system"), ("escalated", "system"), ("acknowledged", "zhang"),
                                          ("resolved", "system"), ("closed", "wang"))):
            j.alerts.add_event(tx, aid, T0 + 100 * k, state, None, who)
    return j, lots


def forwarder(sink: MqttUplinkSink, j: Journal, lots: Lots) -> Forwarder:
    clock = ManualClock(T0 + 9000)
    return Forwarder(sink, j, clock, Stats(), poll_interval=0.05, backoff_initial=0.05, backoff_max=0.3,
                     rng=random.Random(3), site=lots.cfg.site.id, epcis=uplink_source(lots, clock.now),
                     site_info=site_info(lots.cfg), language="en")


class Gate:
    """Holds every publish while the test's subscriber connects (events are not retained). `close()` also waits
    for a publish already past the gate, which could otherwise reach the restarted broker before the subscriber."""

    def __init__(self, sink: MqttUplinkSink) -> None:
        self._cond = threading.Condition()
        self._open, self._busy = True, 0
        publish = sink._publish

        def gated(site: str, messages: Any) -> None:
            with self._cond:
                assert self._cond.wait_for(lambda: self._open, 30), "gate never opened"
                self._busy += 1
            try:
                publish(site, messages)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

        sink._publish = gated  # type: ignore[method-assign]

    def close(self) -> None:
        with self._cond:
            self._open = False
            assert self._cond.wait_for(lambda: self._busy == 0, 30), "a publish never returned"

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()


@pytest.mark.asyncio
async def test_offline_box_backfills_events_in_order_and_resends_keep_ids(mosquitto: Mosquitto,
                                                                          tmp_path: Path) -> None:
    j, lots = box(tmp_path)
    await asyncio.to_thread(mosquitto.stop)  # the box is offline: its 4G link is down
    sink = uplink(mosquitto.port)
    gate = Gate(sink)
    f = forwarder(sink, j, lots)
    task = asyncio.create_task(f.run())
    try:
        await asyncio.to_thread(wait_until, lambda: f.state.failures >= 2, 30, "failed attempts while offline")
        assert j.cursors.get("epcis:region") == 0 and j.cursors.get("events:region") == 0
        await asyncio.to_thread(gate.close)
        await asyncio.to_thread(mosquitto.start)
        sub = Subscriber(mosquitto.port)
        assert await asyncio.to_thread(sub.subscribed.wait, 30), "the subscriber never subscribed"
        gate.open()
        await asyncio.to_thread(wait_until, lambda: j.cursors.get("epcis:region") == 6
                                and j.cursors.get("events:region") == 5, 30, "back-fill confirmed")
    finally:
        await stop_all([f], [task])
        await sink.close()
    try:
        await asyncio.to_thread(wait_until, lambda: len(unique(sub, "epcis")) == 6 and len(unique(sub, "alarms")) == 4,
                                30, "all at the subscriber")
        epcis = check_payloads(sub)
        # one connection once the broker was back, then the clean goodbye: readings and events share it (two
        # under one client id made the broker drop each in turn, a reconnect storm)
        assert [p["state"] for p in sub.on("coldchain/t1/status")] == ["online", "offline"]
        first_ids = [e["eventID"] for e in epcis]
        assert len(set(first_ids)) == 6
        # the cursor lost (a crash before its commit): the same events again, with the same ids
        before = len(sub.on("coldchain/t1/events/epcis"))
        j.cursors.set("epcis:region", 3)
        again = uplink(mosquitto.port)
        f2 = forwarder(again, j, lots)
        task2 = asyncio.create_task(f2.run())
        try:
            await asyncio.to_thread(wait_until, lambda: len(sub.on("coldchain/t1/events/epcis")) >= before + 3, 30,
                                    "resent")
        finally:
            await stop_all([f2], [task2])
            await again.close()
        assert [e["eventID"] for e in sub.on("coldchain/t1/events/epcis")][before:before + 3] == first_ids[3:]
    finally:
        sub.close()
    late = Subscriber(mosquitto.port)  # a hub that connects later still learns the site (retained)
    try:
        await asyncio.to_thread(wait_until, lambda: late.on("coldchain/t1/site"), 30, "retained site")
        assert late.on("coldchain/t1/site")[-1]["rooms"][1]["capacity"] == {"value": 40, "unit": "t"}
    finally:
        late.close()


def unique(sub: Subscriber, stream: str) -> list[dict[str, Any]]:
    """At-least-once delivery: the first copy of each message, as a subscriber de-duplicates (the contract's keys)."""
    seen, out = set(), []
    for p in sub.on(f"coldchain/t1/events/{stream}"):
        key = p["eventID"] if stream == "epcis" else (p["site"], p["id"], p["state"])
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def check_payloads(sub: Subscriber) -> list[dict[str, Any]]:
    """The contract's payloads as the subscriber got them; returns the EPCIS events."""
    epcis = unique(sub, "epcis")
    assert [(e["cc:lot"], e["bizStep"]) for e in epcis] == [
        ("L-0", "commissioning"), ("L-0", "storing"), ("L-0", "shipping"),
        ("L-1", "commissioning"), ("L-1", "storing"), ("L-1", "shipping")]  # the journal's order
    for e in epcis:
        assert [p.message for p in VALIDATOR.iter_errors(e)] == []
    assert epcis[2]["cc:destination"] == "wanzhou-02"
    assert epcis[2]["sensorElementList"][0]["sensorReport"][0]["maxValue"] == 6.5  # the stay in z2 it ends
    alarms = unique(sub, "alarms")
    assert [(a["state"], a["by"]) for a in alarms] == [("open", None), ("acknowledged", "zhang"),
                                                       ("resolved", None), ("closed", "wang")]
    assert len({a["id"] for a in alarms}) == 1 and uuid.UUID(alarms[0]["id"]).version == 4  # kept, not the row id
    assert alarms[0] | {"ts": 0, "id": 1} == {"id": 1, "site": "t1", "zone": "z1", "sensor": "s1", "kind": "temp_high",
                                     "state": "open", "ts": 0, "value": 9.5, "by": None,
                                     "text": "t1 z1: temperature high, ALARM"}
    site = sub.on("coldchain/t1/site")[-1]
    assert site | {"ts": 0} == {"site": "t1", "name": "测试冷库", "kind": "center", "timezone": "Asia/Shanghai",
                                "location": {"lat": 31.02, "lon": 109.46}, "ts": 0, "rooms": [
                                    {"zone": "z1", "name": "1号库", "capacity": None, "commodity": "mandarin"},
                                    {"zone": "z2", "name": "2号库", "capacity": {"value": 40, "unit": "t"},
                                     "commodity": "mandarin"}]}
    return epcis


@pytest.mark.asyncio
async def test_a_lot_change_over_http_wakes_the_uplink(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """With silent sensors and a poll of an hour, only the API's wake-up can send the check-in's event."""
    import httpx

    from daemon.app.runtime import Daemon
    from tests.daemon.api.test_history_api import CONFIG, STAFF

    sinks = ("sinks:\n  - {id: region, type: mqtt_uplink, host: 127.0.0.1, port: " + str(mosquitto.port)
             + ", timeout: 5}\n")
    d = Daemon(make_config(tmp_path, CONFIG.replace("notifiers:\n", sinks + "notifiers:\n")), clock=ManualClock(T0))
    (f,) = d.forwarders
    f.poll_interval = 3600.0
    sub = Subscriber(mosquitto.port)
    assert await asyncio.to_thread(sub.subscribed.wait, 30), "the subscriber never subscribed"
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=30) as http:
            await asyncio.to_thread(wait_until, lambda: f.state.cursor_resets == 0 and f._wake.is_set() is False,
                                    10, "the forwarder waiting")
            lot = {"code": "W-1", "commodity": "mandarin", "zone": "z1"}
            assert (await http.post("/api/v1/lots", json=lot, headers=STAFF)).status_code == 201
            await asyncio.to_thread(wait_until, lambda: sub.on("coldchain/t1/events/epcis"), 30, "the event")
        assert sub.on("coldchain/t1/events/epcis")[0]["cc:lot"] == "W-1"
    finally:
        await d.stop()
        sub.close()
