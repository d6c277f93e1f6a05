"""A vehicle box (`site.kind: vehicle`): a lot received from a center is `loading` into a compartment, shipped on
to the next center `unloading`, both `in_transit` without a bizLocation, every event marked `cc:siteKind`; the
unloading carries the compartment's temperature report. Valid against GS1's schema and its JSON-LD context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.app.runtime import site_info
from daemon.lots.epcis import Epcis
from daemon.lots.store import Lots
from daemon.ports.model import Quantity, Reading
from daemon.storage.journal import Journal
from drivers.sinks.mqtt_uplink import site_payload
from tests.conftest import MINIMAL, make_config
from tests.daemon.lots.test_epcis import LI, problems
from tests.daemon.lots.test_epcis_jsonld import EPCIS, dropped, expanded
from tests.daemon.lots.test_transfers import T0

VEHICLE = MINIMAL.replace("site: {id: t1, name: 测试冷库}", "site: {id: truck-1, name: 渝A-12345 冷藏车, kind: vehicle}"
                          ).replace("name: 1号库, name_en: Room 1", "name: 前舱, name_en: Front compartment")


@pytest.fixture
def truck(tmp_path: Path) -> Lots:
    cfg = make_config(tmp_path, VEHICLE)
    j = Journal(tmp_path / "v.db")
    # the compartment: 6 °C, then 9.5 °C (above mandarin's 8 °C) for 30 minutes of the 2 h trip
    j.readings.append([Reading("truck-1", "z1", "s1", Quantity.TEMPERATURE, 9.5 if 60 <= i < 90 else 6.0, T0 + i * 60)
                       for i in range(180)])
    return Lots(j, cfg)


def test_loading_and_unloading_on_a_vehicle_are_valid_epcis(truck: Lots) -> None:
    truck.check_in("V-1", "mandarin", "z1", T0, LI, quantity=1200, unit="kg", source="center-a")
    truck.check_out("V-1", T0 + 2 * 3600, LI, destination="center-b")
    ep = Epcis(truck)
    loading, unloading = (ep.event(e, T0 + 3 * 3600) for e in truck.journal.lot_events.after(0, 10))
    for body in (loading, unloading):
        assert problems(body) == [], body
        assert dropped(body) == 0
        assert expanded(body)[EPCIS + "bizStep"] == [{"@id": f"https://ref.gs1.org/cbv/BizStep-{body['bizStep']}"}]
        assert body["cc:siteKind"] == "vehicle" and body["disposition"] == "in_transit" and "bizLocation" not in body
        assert body["readPoint"] == {"id": "urn:coldchain:site:truck-1:zone:z1"} and body["cc:zone"] == "z1"
    assert (loading["bizStep"], loading["cc:source"]) == ("loading", "center-a")
    assert loading["sourceList"] == [{"type": "location", "source": "urn:coldchain:site:center-a"}]
    assert (unloading["bizStep"], unloading["cc:destination"]) == ("unloading", "center-b")
    summary, alarm = unloading["sensorElementList"][0]["sensorReport"]
    assert (summary["minValue"], summary["maxValue"], summary["cc:minutesOutside"]) == (6.0, 9.5, 30.0)
    assert summary["cc:mkt"] > summary["meanValue"] and alarm["exception"] == "ALARM_CONDITION"


def test_a_center_says_nothing_of_its_kind_and_the_site_message_says_vehicle(truck: Lots, tmp_path: Path) -> None:
    center = Lots(Journal(tmp_path / "c.db"), make_config(tmp_path, MINIMAL))
    center.check_in("C-1", "mandarin", "z1", T0, LI, source="truck-1")
    (body,) = (Epcis(center).event(e, T0 + 60) for e in center.journal.lot_events.after(0, 10))
    assert body["bizStep"] == "receiving" and "cc:siteKind" not in body and "bizLocation" in body
    assert json.loads(site_payload(site_info(truck.cfg)))["kind"] == "vehicle"
    assert json.loads(site_payload(site_info(center.cfg)))["kind"] == "center"
