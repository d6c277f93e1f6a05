"""format: bthome through a real Mosquitto: an encrypted Shelly BLU H&T relayed by Theengs Gateway and a
Shelly scan script reaches the journal once, and `coldchain doctor` shows it answering."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drivers.sensors.ble.peers import doctor_while_publishing
from tests.drivers.sensors.bthome.test_decode import envelopes
from tests.drivers.sensors.bthome.vectors import KEY, VECTORS
from tests.drivers.sensors.mqtt.conftest import Broker, broker  # noqa: F401  (the session fixture)
from tests.drivers.sensors.mqtt.test_driver import config, journal_values, mqtt_driver, running, uid, until_api
from tests.peers import until

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]
RAW, MAC = VECTORS["encrypted"][0], VECTORS["encrypted"][1]


@pytest.fixture
def key(tmp_path: Path) -> Path:
    f = tmp_path / "blu.bindkey"
    f.write_text(KEY, encoding="utf-8")
    return f


def sensor(u: str, key: Path) -> tuple[dict[str, object], dict[str, tuple[str, bytes | str]]]:
    env = envelopes(RAW, MAC)
    theengs, shelly = env["theengs"], env["shelly scan result"]
    topics = {"theengs": (f"{u}/{theengs[0]}", theengs[1]), "shelly": (f"{u}-{shelly[0]}", shelly[1])}
    return ({"id": "blu", "format": "bthome", "topic": topics["theengs"][0],
             "options": {"mac": MAC, "relays": [topics["shelly"][0]], "encryption_key": {"file": str(key)}}}, topics)


async def test_encrypted_device_via_two_gateways(broker: Broker, tmp_path: Path, key: Path) -> None:  # noqa: F811
    u = uid()
    s, topics = sensor(u, key)
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, [s])
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        for topic, payload in topics.values():
            broker.publish(topic, payload)
        await until_api(d, "blu", (25.06, "°C"))
        await until_api(d, "blu", (50.55, "%RH"), "humidity")
        state = mqtt_driver(d).states["blu"].registered
        await until(lambda: state.dropped == 1, "the second gateway's copy dropped")
        assert journal_values(d, "blu") == [25.06]
        assert state.facts["encrypted"] is True and state.facts["rssi"] in (-70, -66)


async def test_doctor_shows_the_device_answering(broker: Broker, tmp_path: Path, key: Path) -> None:  # noqa: F811
    u = uid()
    s, topics = sensor(u, key)
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, [s])
    text = await doctor_while_publishing(broker, cfg, [topics["theengs"]])
    assert "✓ sensor blu" in text and "temperature 25.06, humidity 50.55" in text, text
