"""format: ruuvi through a real Mosquitto: Ruuvi Gateway messages from two gateways reach the journal once
per measurement, not-available values as faults, and `coldchain doctor` shows the tag answering."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drivers.sensors.ble.peers import doctor_while_publishing
from tests.drivers.sensors.mqtt.conftest import Broker, broker  # noqa: F401  (the session fixture)
from tests.drivers.sensors.mqtt.test_driver import config, journal_values, mqtt_driver, running, uid, until_api
from tests.drivers.sensors.ruuvi.test_decode import TAG, gateway
from tests.drivers.sensors.ruuvi.vectors import VECTORS
from tests.peers import until

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]


def sensor(u: str) -> dict[str, object]:
    return {"id": "tag", "format": "ruuvi", "topic": f"ruuvi/{u}-gw1/{TAG}",
            "options": {"mac": TAG, "relays": [f"ruuvi/{u}-gw2/{TAG}"], "min_interval": 0}}


async def test_two_gateways_one_reading_per_measurement(broker: Broker, tmp_path: Path) -> None:  # noqa: F811
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, [sensor(u)])
    valid = VECTORS["5 valid"][0]
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        for gw in ("gw1", "gw2"):  # one measurement heard by both gateways
            broker.publish(f"ruuvi/{u}-{gw}/{TAG}", gateway(valid))
        await until_api(d, "tag", (24.3, "°C"))
        await until_api(d, "tag", (53.49, "%RH"), "humidity")
        broker.publish(f"ruuvi/{u}-gw2/{TAG}", gateway(VECTORS["5 invalid"][0]))  # no sequence: no de-duplication
        await until(lambda: len(journal_values(d, "tag")) == 2, "the not-available reading")
        faults = d.journal.readings.query(sensor="tag", quantity="temperature")
        assert [r.value for r in faults] == [pytest.approx(24.3), None]
        assert faults[1].quality.name == "FAULT" and "not available from Ruuvi tag" in faults[1].note
        assert mqtt_driver(d).states["tag"].registered.dropped == 1  # gw2's copy of sequence 205


async def test_doctor_shows_the_tag_answering(broker: Broker, tmp_path: Path) -> None:  # noqa: F811
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, [sensor(u)])
    text = await doctor_while_publishing(broker, cfg, [(f"ruuvi/{u}-gw1/{TAG}", gateway(VECTORS["5 valid"][0])), (
        f"ruuvi/{u}-gw1/D0:00:00:00:00:01", gateway(VECTORS["C5 valid"][0]))])
    assert "✓ sensor tag" in text and "temperature 24.3" in text and "humidity 53.49" in text, text
    assert f"ruuvi/{u}-gw1/D0:00:00:00:00:01 publishes but no sensor is configured" in text, text
