"""A broker with a smaller in-flight window than the daemon was told.

Mosquitto's max_inflight_messages 8 against the default `mqtt.broker_inflight` 20: the early commit at 3/4 of 20
never comes, so the first messages wait out `storage.flush_interval`; nothing may be lost, doubled or reordered.
Measured with this setup (mosquitto 2.0.11, session 12): the broker stopped at 8 unacknowledged once, then sent its
queue at once after the timed commit, and under a steady 50 msg/s kept up to 174 unacknowledged: it does not hold
to the window after the first stall. A broker that does (EMQX, by its documentation) is played by strict_window.py
in front of mosquitto; the driver learns its window (window.py; docs/robustness.md, "The broker's in-flight
window")."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config.schema import AppConfig
from tests.conftest import free_port
from tests.drivers.sensors.mqtt.test_driver import config, journal_values, mqtt_driver, running, uid
from tests.drivers.sensors.mqtt.test_receive_maximum import publish
from tests.peers import until

from .conftest import Broker, _start, _stop
from .strict_window import StrictWindow

pytestmark = pytest.mark.asyncio
SENT = 120
WINDOW = 8


@pytest.fixture
def narrow_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker whose window for each client is WINDOW messages."""
    port = free_port()
    body = f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages {WINDOW}\n"
    proc, log = _start(tmp_path_factory.mktemp("mosquitto-narrow"), body, [port])
    yield Broker(port, proc, log)
    _stop(proc)


def z2m_config(tmp_path: Path, port: int, client_id: str, mqtt: dict[str, object]) -> AppConfig:
    """One Zigbee2MQTT sensor on its own topic (the client id's), a 5 s commit window."""
    cfg = config(tmp_path, {"port": port, "client_id": client_id, **mqtt},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{client_id}"}])
    cfg.storage.flush_interval = 5.0
    return cfg


@pytest.mark.parametrize("mqtt", [{"protocol": "3.1.1"}, {"protocol": "5", "receive_maximum": None}],
                         ids=["3.1.1", "5-without-receive-maximum"])
async def test_a_smaller_broker_window_loses_nothing(
        narrow_broker: Broker, tmp_path: Path, mqtt: dict[str, object]) -> None:
    u = f"nw-{uid()}"
    async with running(z2m_config(tmp_path, narrow_broker.port, u, mqtt)) as d:
        drv = mqtt_driver(d)
        await until(lambda: drv.connected, "connection")
        assert drv._hurry_at == 15  # 3/4 of the configured 20: more than the broker sends
        publish(narrow_broker, f"zigbee2mqtt/{u}", SENT, 6.0)
        await until(lambda: len(journal_values(d, "z2m")) >= SENT, f"{SENT} readings committed", timeout=90)
        await d.pipeline.flush()
        values = journal_values(d, "z2m")
    assert values == [round(6.0 + i / 1000, 3) for i in range(SENT)]  # all, in order, none twice


@pytest.mark.parametrize("mqtt", [{"protocol": "3.1.1"}, {"protocol": "5"}], ids=["3.1.1", "5"])
async def test_a_broker_that_keeps_a_smaller_window_is_learned_and_committed_at(
        broker: Broker, tmp_path: Path, mqtt: dict[str, object], caplog: pytest.LogCaptureFixture) -> None:
    """A broker that holds to WINDOW for good (strict_window.py, as EMQX documents it): each commit window
    passes with it stopped. The driver sees a stall at 8 (silence while 8 await acknowledgement, the broker's
    queue at once after the timed commit), commits 1.1 s after the messages stop at 8 again, sees the queue
    follow, takes 8 as the window and commits at 6 from then on. Without that, 120 messages take 15 windows of
    5 s; the wait below gives up after 45 s."""
    u = f"sw-{uid()}"
    caplog.set_level(logging.WARNING)
    async with StrictWindow(broker.port, WINDOW) as proxy:
        async with running(z2m_config(tmp_path, proxy.port, u, mqtt)) as d:
            drv = mqtt_driver(d)
            await until(lambda: drv.connected, "connection")
            assert drv._hurry_at > WINDOW  # 15 (3.1.1, 20 configured) or 750 (MQTT 5, Receive Maximum 1000)
            publish(broker, f"zigbee2mqtt/{u}", SENT, 6.0)
            await until(lambda: len(journal_values(d, "z2m")) >= SENT, f"{SENT} readings committed", timeout=45)
            await d.pipeline.flush()
            values = journal_values(d, "z2m")
            assert drv.window.learned == WINDOW and drv._hurry_at == WINDOW * 3 // 4
            assert drv.counters["broker_window_learned"] == 1
        assert proxy.most_in_flight == WINDOW  # the proxy held to it
    assert values == [round(6.0 + i / 1000, 3) for i in range(SENT)]  # all, in order, none twice
    assert any(f"stopped sending at {WINDOW} unacknowledged" in r.getMessage() for r in caplog.records)
