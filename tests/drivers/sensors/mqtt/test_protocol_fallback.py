"""MQTT 5 by default, MQTT 3.1.1 when the broker refuses 5.

mosquitto cannot be told to refuse MQTT 5, so a 3.1.1-only broker is played by a small TCP server on 127.0.0.1
in front of a real mosquitto: it reads each CONNECT's protocol level, answers a level-5 CONNECT as a broker that
speaks only 3.1.1 must (CONNACK return code 0x01, unacceptable protocol version: MQTT 3.1.1 sections 3.1.2.2
and 3.2.2.3), or closes without a CONNACK (`mode="close"`), and pipes every other connection to mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.drivers.sensors.mqtt.conftest import Broker
from tests.drivers.sensors.mqtt.test_driver import config, journal_values, mqtt_driver, running, uid
from tests.peers import until

pytestmark = pytest.mark.peer

CONNACK_REFUSED_PROTOCOL = b"\x20\x02\x00\x01"  # CONNACK, remaining length 2, no session, return code 0x01


class Only311:
    """A 3.1.1-only broker in front of `upstream`: `levels` counts the protocol level of each CONNECT."""

    def __init__(self, upstream: int, mode: str = "connack") -> None:
        self.upstream, self.mode = upstream, mode  # "connack", "close" (v5 only), "close-all" (every CONNECT)
        self.levels: Counter[int] = Counter()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Only311:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for t in list(self._pipes):
            t.cancel()
        with contextlib.suppress(Exception):
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readexactly(1)
            length = b""
            while True:  # the remaining length: 1 to 4 bytes, 7 bits each
                b = await reader.readexactly(1)
                length += b
                if not b[0] & 0x80:
                    break
            variable = await reader.readexactly(7)  # protocol name (2 + 4 bytes "MQTT") and protocol level
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        level = variable[6]
        self.levels[level] += 1
        if self.mode == "close-all" or (level == 5 and self.mode == "close"):
            writer.close()
            return
        if level == 5:
            writer.write(CONNACK_REFUSED_PROTOCOL)
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        up_writer.write(head + length + variable)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()


@contextlib.asynccontextmanager
async def only311(broker: Broker, mode: str = "connack") -> AsyncIterator[Only311]:
    async with Only311(broker.port, mode) as proxy:
        yield proxy


@pytest.mark.asyncio
async def test_the_default_falls_back_to_3_1_1_when_the_broker_refuses_mqtt_5_and_says_so(
        broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    u = uid()
    caplog.set_level(logging.INFO, logger="coldchain")
    async with only311(broker) as proxy:
        cfg = config(tmp_path, {"port": proxy.port, "client_id": f"t-{u}"},
                     [{"id": "t1", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
        assert cfg.mqtt is not None and cfg.mqtt.protocol == "5"  # the default
        async with running(cfg) as d:
            drv = mqtt_driver(d)
            await until(lambda: drv.connected, "a connection on MQTT 3.1.1")
            assert drv.protocol == "3.1.1" and proxy.levels == Counter({5: 1, 4: 1})
            assert drv._hurry_at == 15  # the broker's window is mqtt.broker_inflight (20) now, not Receive Maximum
            broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 4.5}')
            await until(lambda: journal_values(d, "t1") == [4.5], "the reading in the journal")
    lines = [r.getMessage() for r in caplog.records if "refused MQTT 5" in r.getMessage()]
    assert len(lines) == 1 and f"127.0.0.1:{proxy.port}" in lines[0] and "MQTT 3.1.1" in lines[0], lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a fallback is not an error"


@pytest.mark.asyncio
async def test_a_fallen_back_daemon_keeps_its_3_1_1_session_across_a_restart(broker: Broker, tmp_path: Path) -> None:
    """What was published while the daemon was down arrives after its restart (the broker kept the session)."""
    u = uid()
    async with only311(broker) as proxy:
        cfg = config(tmp_path, {"port": proxy.port, "client_id": f"t-{u}"},
                     [{"id": "t1", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
        async with running(cfg) as d:
            drv = mqtt_driver(d)
            await until(lambda: drv.connected, "a connection on MQTT 3.1.1")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 3.5}')  # the daemon is down
        async with running(cfg) as d:
            await until(lambda: journal_values(d, "t1") == [3.5], "the reading queued by the broker")
            assert mqtt_driver(d).protocol == "3.1.1"


@pytest.mark.asyncio
async def test_explicit_3_1_1_never_tries_mqtt_5(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    async with only311(broker) as proxy:
        cfg = config(tmp_path, {"port": proxy.port, "client_id": f"t-{u}", "protocol": "3.1.1"},
                     [{"id": "t1", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
        async with running(cfg) as d:
            drv = mqtt_driver(d)
            await until(lambda: drv.connected, "a connection")
            broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 2.5}')
            await until(lambda: journal_values(d, "t1") == [2.5], "the reading in the journal")
            assert proxy.levels == Counter({4: 1})


@pytest.mark.asyncio
async def test_a_broker_that_closes_on_a_v5_connect_gets_3_1_1(broker: Broker, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    u = uid()
    caplog.set_level(logging.INFO, logger="coldchain")
    async with only311(broker, mode="close") as proxy:
        cfg = config(tmp_path, {"port": proxy.port, "client_id": f"t-{u}"},
                     [{"id": "t1", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
        async with running(cfg) as d:
            drv = mqtt_driver(d)
            await until(lambda: drv.connected, "a connection on MQTT 3.1.1")
            assert drv.protocol == "3.1.1" and proxy.levels == Counter({5: 1, 4: 1})
            broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 1.5}')
            await until(lambda: journal_values(d, "t1") == [1.5], "the reading in the journal")
    assert any("staying on 3.1.1" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_a_close_that_is_not_about_the_protocol_goes_back_to_mqtt_5_once(broker: Broker,
                                                                                 tmp_path: Path) -> None:
    """A listener that closes every connection (say, one that wants a client certificate): one try with 3.1.1,
    then MQTT 5 again for good, retrying with the usual backoff; no flapping between the two."""
    u = uid()
    async with only311(broker, mode="close-all") as proxy:
        cfg = config(tmp_path, {"port": proxy.port, "client_id": f"t-{u}"},
                     [{"id": "t1", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
        async with running(cfg) as d:
            drv = mqtt_driver(d)
            await until(lambda: proxy.levels[5] >= 3, "MQTT 5 tried again after the 3.1.1 try")
            assert drv.protocol == "5" and proxy.levels[4] == 1 and not drv.connected
            assert "closed the connection before accepting it" in drv.state


@pytest.mark.asyncio
async def test_probe_falls_back_to_3_1_1_too(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    async with only311(broker) as proxy:
        cfg = config(tmp_path, {"port": proxy.port, "client_id": f"t-{u}"},
                     [{"id": "t1", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
        from daemon.app.runtime import Daemon

        d = Daemon(cfg)
        drv = mqtt_driver(d)
        probing = asyncio.create_task(drv.probe(4.0))
        await until(lambda: proxy.levels[4] >= 1, "the probe's 3.1.1 connection")
        await asyncio.sleep(0.5)  # subscribed by now
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 6.5}')
        result = await probing
        assert result["broker"]["connected"] and result["broker"]["protocol"].startswith("3.1.1")
        assert result["sensors"]["t1"]["answered"] and result["sensors"]["t1"]["values"] == {"temperature": 6.5}
