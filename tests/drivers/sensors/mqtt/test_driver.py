"""The MQTT driver against a real Mosquitto: journal and API, auth, TLS, persistent sessions,
acknowledgement after journaling, availability, bad payloads, unmapped topics and `probe`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from daemon.app.runtime import Daemon
from daemon.config.schema import AppConfig
from daemon.ports.clock import Clock
from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext, Receipt
from drivers.sensors.mqtt import MqttDriver
from tests.conftest import make_config
from tests.drivers.sensors.mqtt.conftest import Broker, PersistentBroker, RestartableBroker
from tests.peers import until

pytestmark = pytest.mark.peer


def uid() -> str:
    """Topics and client ids unique per test: the brokers (and their retained messages) live all session."""
    return uuid.uuid4().hex[:8]


def config(tmp_path: Path, mqtt: dict[str, Any], sensors: list[dict[str, Any]]) -> AppConfig:
    doc = {
        "site": {"id": "t1", "name": "测试冷库", "timezone": "Asia/Shanghai"},
        "storage": {"journal": "journal.db", "flush_interval": 0.05},
        "mqtt": {"host": "127.0.0.1", "reconnect_min": 1, "reconnect_max": 2, **mqtt},
        "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin"}],
        "sensors": [{"zone": "z1", "type": "mqtt", **s} for s in sensors],
        "api": {"enabled": True, "port": 0},
    }
    return make_config(tmp_path, yaml.safe_dump(doc, allow_unicode=True))


@contextlib.asynccontextmanager
async def running(cfg: AppConfig) -> AsyncIterator[Daemon]:
    d = Daemon(cfg)
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


def mqtt_driver(d: Daemon) -> MqttDriver:
    return next(x for x in d.drivers if isinstance(x, MqttDriver))


async def zone_sensors(d: Daemon) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}") as http:
        body = (await http.get("/api/v1/zones", params={"lang": "en"})).json()
    return {s["id"]: s for z in body["zones"] for s in z["sensors"]}


async def api_value(d: Daemon, sensor: str, quantity: str = "temperature") -> tuple[float, str] | None:
    r = (await zone_sensors(d)).get(sensor, {}).get("readings", {}).get(quantity)
    return None if r is None or r["value"] is None else (r["value"], r["unit"])


async def until_api(d: Daemon, sensor: str, expected: tuple[float, str], quantity: str = "temperature") -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = await api_value(d, sensor, quantity)
        if got is not None and got[0] == pytest.approx(expected[0]) and got[1] == expected[1]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sensor} {quantity} never became {expected} in the API (last: {got})")


def journal_values(d: Daemon, sensor: str, quantity: str = "temperature") -> list[float | None]:
    return [r.value for r in d.journal.readings.query(sensor=sensor, quantity=quantity)]


# --------------------------------------------------------------------------- journal + API, all formats


@pytest.mark.asyncio
async def test_every_format_reaches_journal_and_api(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    sensors: list[dict[str, Any]] = [
        {"id": "tas", "format": "tasmota", "topic": f"{u}-tas", "sensor_key": "AM2301"},
        {"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}-snzb"},
        {"id": "ht1", "format": "shelly_gen1", "topic": f"shellies/shellyht-{u}"},
        {"id": "ht2", "format": "shelly_gen2", "topic": f"shellyplusht-{u}"},
        {"id": "esp", "format": "esphome", "topic": f"{u}-node", "object_ids": {"temperature": "room_t"}},
        {"id": "ha", "format": "homeassistant", "topic": f"homeassistant/sensor/{u}/state"},
        {"id": "js", "format": "json", "topic": f"factory/{u}/data",
         "values": {"temperature": {"path": "d.t", "scale": 0.1}}},
    ]
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, sensors)
    async with running(cfg) as d:
        drv = mqtt_driver(d)
        await until(lambda: drv.connected, "connection")
        broker.publish(f"tele/{u}-tas/SENSOR",
                       '{"Time":"2026-11-22T08:00:00","AM2301":{"Temperature":39.2,"Humidity":91.5},"TempUnit":"F"}')
        broker.publish(f"zigbee2mqtt/{u}-snzb", '{"temperature": 5.5, "humidity": 90.1, "battery": 100}')
        broker.publish(f"shellies/shellyht-{u}/sensor/temperature", "2.5")
        broker.publish(f"shellyplusht-{u}/events/rpc", json.dumps({
            "src": f"shellyplusht-{u}", "method": "NotifyFullStatus",
            "params": {"ts": 1.0, "temperature:0": {"id": 0, "tC": 1.5, "tF": 34.7},
                       "humidity:0": {"id": 0, "rh": 93}}}))
        broker.publish(f"{u}-node/sensor/room_t/state", "3.25")
        broker.publish(f"homeassistant/sensor/{u}/state", '{ "temperature": 6.20, "humidity": 43.70 }')
        broker.publish(f"factory/{u}/data", '{"d": {"t": 42}}')
        await until_api(d, "tas", (4.0, "°C"))  # 39.2 °F, converted by the pipeline
        await until_api(d, "tas", (91.5, "%RH"), "humidity")
        await until_api(d, "z2m", (5.5, "°C"))
        await until_api(d, "ht1", (2.5, "°C"))
        await until_api(d, "ht2", (1.5, "°C"))
        await until_api(d, "ht2", (93.0, "%RH"), "humidity")
        await until_api(d, "esp", (3.25, "°C"))
        await until_api(d, "ha", (6.2, "°C"))
        await until_api(d, "js", (4.2, "°C"))
        assert journal_values(d, "tas") == [pytest.approx(4.0)]  # the journal holds °C, not the device's °F
        info = drv.describe()
        assert info["connected"] and info["sensors"]["tas"]["last_message"] is not None
        assert info["sensors"]["tas"]["last_values"] == {"temperature": 39.2, "humidity": 91.5}


@pytest.mark.asyncio
async def test_fault_values_are_journaled_as_faults(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                 [{"id": "esp", "format": "esphome", "topic": f"{u}-node"},
                  {"id": "ds", "format": "tasmota", "topic": f"{u}-ds", "ds18b20_id": "28FF01"}])
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        broker.publish(f"{u}-node/sensor/temperature/state", "nan")
        broker.publish(f"tele/{u}-ds/SENSOR", '{"DS18B20":{"Id":"28FF01","Temperature":85.0},"TempUnit":"C"}')
        await until(lambda: d.journal.readings.query(sensor="esp") and d.journal.readings.query(sensor="ds"), "fault readings")
        esp, ds = d.journal.readings.query(sensor="esp")[0], d.journal.readings.query(sensor="ds")[0]
        assert esp.value is None and esp.quality.name == "FAULT" and f"{u}-node/sensor/temperature/state" in esp.note
        assert ds.quality.name == "FAULT" and "known error value 85" in ds.note


# --------------------------------------------------------------------------- bad payloads


@pytest.mark.asyncio
async def test_garbage_is_counted_logged_once_and_others_keep_flowing(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                 [{"id": "tas", "format": "tasmota", "topic": f"{u}-tas"},
                  {"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    caplog.set_level(logging.WARNING, logger="coldchain")
    async with running(cfg) as d:
        drv = mqtt_driver(d)
        await until(lambda: drv.connected, "connection")
        broker.publish(f"tele/{u}-tas/SENSOR", b"\x00\xffgarbage{")
        broker.publish(f"tele/{u}-tas/SENSOR", "{not json")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 2.0}')
        await until_api(d, "z2m", (2.0, "°C"))
        await until(lambda: drv.describe()["bad_payloads"] == 2, "two bad payloads counted")
        broker.publish(f"tele/{u}-tas/SENSOR", '{"SHT3X":{"Temperature":3.5,"Humidity":80},"TempUnit":"C"}')
        await until_api(d, "tas", (3.5, "°C"))
        assert drv.describe()["bad_payload_reasons"] == {f"tele/{u}-tas/SENSOR": "not JSON"}
        logged = [r for r in caplog.records if f"tele/{u}-tas/SENSOR" in r.getMessage()]
        assert len(logged) == 1 and "not JSON" in logged[0].getMessage()
        assert d.stats.get("driver_crashes") == 0


# --------------------------------------------------------------------------- availability


@pytest.mark.asyncio
async def test_tasmota_lwt_changes_online_state_in_api(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                 [{"id": "tas", "format": "tasmota", "topic": f"{u}-tas"}])
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        broker.publish(f"tele/{u}-tas/SENSOR", '{"AM2301":{"Temperature":4.5,"Humidity":90},"TempUnit":"C"}')
        await until_api(d, "tas", (4.5, "°C"))
        broker.publish(f"tele/{u}-tas/LWT", "Offline", retain=True)

        async def state() -> tuple[bool, str]:
            s = (await zone_sensors(d))["tas"]
            return s["online"], s["reason"]

        deadline = time.monotonic() + 20
        while (await state())[0] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        online, reason = await state()
        assert not online and f"tele/{u}-tas/LWT" in reason and "Offline" in reason
        broker.publish(f"tele/{u}-tas/LWT", "Online", retain=True)
        while not (await state())[0] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert (await state())[0]


class Recorder:
    """A DriverContext whose emit records samples (and can fail like a broken disk)."""

    def __init__(self, fail: int = 0) -> None:
        self.samples: list[Sample] = []
        self.online: list[tuple[str, bool, str]] = []
        self.fail = fail
        self.calls = 0

    async def emit(self, samples: Sequence[Sample]) -> None:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise OSError("journal write failed (disk full)")
        self.samples += samples

    def ctx(self, cfg: AppConfig) -> DriverContext:
        return DriverContext(Clock(), self.emit, lambda s, o, r: self.online.append((s, o, r)),
                             logging.getLogger("coldchain.test.mqtt"), cfg)


@contextlib.asynccontextmanager
async def driving(driver: MqttDriver) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(driver.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await driver.close()


@pytest.mark.asyncio
async def test_availability_topics_of_every_format(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, [
        {"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"},
        {"id": "esp", "format": "esphome", "topic": f"{u}-esp"},
        {"id": "sh2", "format": "shelly_gen2", "topic": f"{u}-plus"},
        {"id": "js", "format": "json", "topic": f"x/{u}", "values": {"temperature": "t"},
         "availability_topic": f"x/{u}/alive"},
    ])
    rec = Recorder()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        cases = [
            (f"zigbee2mqtt/{u}/availability", '{"state":"offline"}', "z2m", False),
            (f"zigbee2mqtt/{u}/availability", '{"state":"online"}', "z2m", True),
            (f"zigbee2mqtt/{u}/availability", "offline", "z2m", False),  # legacy z2m 1.x
            (f"{u}-esp/status", "offline", "esp", False),
            (f"{u}-plus/online", "false", "sh2", False),
            (f"{u}-plus/online", "true", "sh2", True),
            (f"x/{u}/alive", "Offline", "js", False),
        ]
        for topic, payload, sensor, online in cases:
            seen = len(rec.online)
            broker.publish(topic, payload)

            def news(seen: int = seen) -> list[tuple[str, bool, str]]:
                return rec.online[seen:]

            got = await until(news, f"availability from {topic}")
            assert got[0][:2] == (sensor, online) and topic in got[0][2]


# --------------------------------------------------------------------------- auth and TLS


@pytest.mark.asyncio
async def test_wrong_password_reported_and_daemon_keeps_running(
    auth_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    u = uid()
    caplog.set_level(logging.ERROR, logger="coldchain")
    cfg = config(tmp_path, {"port": auth_broker.port, "client_id": f"t-{u}", "username": auth_broker.username,
                            "password": "wrong"}, [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    async with running(cfg) as d:
        drv = mqtt_driver(d)
        state = await until(lambda: "refused" in drv.state and drv.state, "refusal")
        assert "Not authorized" in state and "mqtt.password" in state
        await until(lambda: drv.counters["connection_refused"] >= 2, "a retry with backoff")
        errors = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(errors) == 1 and f"127.0.0.1:{auth_broker.port}" in errors[0]  # logged once, not per retry
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}") as http:
            assert (await http.get("/healthz")).status_code == 200
        sensor = (await zone_sensors(d))["z2m"]
        assert not sensor["online"] and "refused" in sensor["reason"]
        assert d.stats.get("driver_crashes") == 0


@pytest.mark.asyncio
async def test_password_file_login(auth_broker: Broker, tmp_path: Path) -> None:
    u = uid()
    secret = tmp_path / "mqtt.secret"
    secret.write_text(f"{auth_broker.password}\n", encoding="utf-8")
    cfg = config(tmp_path, {"port": auth_broker.port, "client_id": f"t-{u}", "username": auth_broker.username,
                            "password_file": str(secret)}, [{"id": "z2m", "format": "zigbee2mqtt",
                                                            "topic": f"zigbee2mqtt/{u}"}])
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        auth_broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 1.25}')
        await until_api(d, "z2m", (1.25, "°C"))


@pytest.mark.asyncio
@pytest.mark.parametrize("client_cert", [False, True], ids=["ca-only", "client-cert"])
async def test_tls(tls_broker: Broker, tmp_path: Path, client_cert: bool) -> None:
    u = uid()
    tls: dict[str, Any] = {"ca_file": str(tls_broker.ca)}
    port = tls_broker.port
    if client_cert:
        tls |= {"cert_file": str(tls_broker.client_cert), "key_file": str(tls_broker.client_key)}
        port = tls_broker.extra_ports["mtls"]
    cfg = config(tmp_path, {"port": port, "client_id": f"t-{u}", "tls": tls},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "TLS connection")
        tls_broker.publish(f"zigbee2mqtt/{u}", '{"temperature": -18.5}')
        await until_api(d, "z2m", (-18.5, "°C"))


@pytest.mark.asyncio
async def test_tls_without_client_cert_is_refused_clearly(tls_broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": tls_broker.extra_ports["mtls"], "client_id": f"t-{u}",
                            "tls": {"ca_file": str(tls_broker.ca)}},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    rec = Recorder()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver) as task:
        await until(lambda: driver.counters["connection_unreachable"] + driver.counters["connection_closed"] >= 1,
                    "a failed TLS handshake")
        # the sensor's offline state follows the counted failure (CI saw it not yet recorded at the count)
        await until(lambda: bool(rec.online), "the sensor reported offline")
        assert not driver.connected and not task.done()
        assert rec.online[-1][:2] == ("z2m", False)


# --------------------------------------------------------------------------- persistent session, manual ack


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_messages_published_while_down_arrive_after_restart(
    broker: Broker, tmp_path: Path, protocol: str
) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}", "protocol": protocol},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    async with running(cfg) as d:
        await until(lambda: mqtt_driver(d).connected, "connection")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 0.5}')  # proves the subscription is in place
        await until(lambda: journal_values(d, "z2m") == [0.5], "the first reading")
    for t in (1.0, 2.0, 3.0):  # the daemon is down: the broker keeps these for its session
        broker.publish(f"zigbee2mqtt/{u}", json.dumps({"temperature": t}), qos=1)
    async with running(config(tmp_path, {"port": broker.port, "client_id": f"t-{u}", "protocol": protocol},
                              [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])) as d:
        await until(lambda: journal_values(d, "z2m") == [0.5, 1.0, 2.0, 3.0], "the queued readings")
        assert "session resumed" in mqtt_driver(d).state


@pytest.mark.asyncio
async def test_a_clean_stop_acknowledges_what_it_committed_so_nothing_comes_back_twice(
        broker: Broker, tmp_path: Path) -> None:
    u = uid()

    def cfg() -> AppConfig:
        c = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                   [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
        c.storage.flush_interval = 3600.0  # nothing commits before stop() does (values inside the limits)
        assert c.mqtt is not None
        c.mqtt.broker_inflight = 100  # nor early for the broker's window (test_window_commit.py): 20 fit in it
        return c

    d = Daemon(cfg())
    await d.start()
    try:
        await until(lambda: mqtt_driver(d).connected, "connection")
        for k in range(20):
            broker.publish(f"zigbee2mqtt/{u}", json.dumps({"temperature": 6 + k / 20}), qos=1)
            if k == 0:  # the subscription is in place once the first one is in
                await until(lambda: d.pipeline._count == 1, "the first reading")
        await until(lambda: d.pipeline._count == 20, "20 readings submitted, not yet committed")
    finally:
        await d.stop()  # commits the 20, then acknowledges them
    async with running(cfg()) as d:
        await until(lambda: mqtt_driver(d).connected, "reconnection")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 6.99}', qos=1)  # after any redelivery
        # pending, or already committed: a message that comes with the end of the replay commits at once
        await until(lambda: d.pipeline._count >= 1 or 6.99 in journal_values(d, "z2m"), "the marker")
        await d.pipeline.flush()
        values = journal_values(d, "z2m")
    assert values == [6 + k / 20 for k in range(20)] + [6.99]  # none twice, none lost


@pytest.mark.asyncio
async def test_ack_only_after_journal_so_a_failed_write_is_redelivered(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    rec = Recorder(fail=1)
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    task = asyncio.create_task(driver.run())
    await until(lambda: driver.connected, "connection")
    broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 7.5}')
    await until(task.done, "run() to stop on the failed journal write")
    with pytest.raises(OSError, match="disk full"):
        task.result()
    assert rec.samples == []
    async with driving(driver):  # what the daemon's supervisor does: run() again
        await until(lambda: rec.samples, "redelivery of the unacknowledged message")
    assert [(s.sensor, s.value) for s in rec.samples] == [("z2m", 7.5)]


class HeldCommits(Recorder):
    """A context with `submit`: every batch's commit stays open until the test completes it."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[asyncio.Future[None]] = []
        self.receipts: list[Receipt | None] = []

    def submit(self, samples: Sequence[Sample], receipt: Receipt | None = None, /) -> asyncio.Future[None]:
        self.samples += samples
        self.receipts.append(receipt)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.commits.append(fut)
        return fut

    def ctx(self, cfg: AppConfig) -> DriverContext:
        c = super().ctx(cfg)
        c.submit = self.submit
        return c


@pytest.mark.asyncio
async def test_next_batch_is_read_while_the_last_commits_and_acks_wait_for_the_commit(
        broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    rec = HeldCommits()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 1.5}')
        await until(lambda: len(rec.commits) == 1, "first batch")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 2.5}')
        await until(lambda: len(rec.commits) == 2, "second batch while the first is not committed")
        rec.commits[0].set_exception(OSError("journal write failed (disk full)"))
        await until(lambda: not driver.connected or driver._client is None, "run() to end on the failed commit")
    # neither message was acknowledged (the second's commit never completed): both come back
    rec2 = Recorder()
    driver2 = MqttDriver(cfg.sensors, rec2.ctx(cfg))
    async with driving(driver2):
        await until(lambda: len(rec2.samples) >= 2, "redelivery of both unacknowledged messages")
    assert sorted(s.value for s in rec2.samples) == [1.5, 2.5]


@pytest.mark.asyncio
async def test_a_message_stored_as_the_broker_went_down_is_not_stored_again_when_resent(
        persistent_broker: PersistentBroker, tmp_path: Path) -> None:
    b, u = persistent_broker, uid()
    topic = f"zigbee2mqtt/{u}"
    cfg = config(tmp_path, {"port": b.port, "client_id": f"t-{u}"}, [{"id": "z2m", "format": "zigbee2mqtt",
                                                                     "topic": topic}])
    rec = HeldCommits()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        b.publish(topic, '{"temperature": 1.5}')
        await until(lambda: len(rec.commits) == 1, "the message submitted")
        b.stop()  # saves the session, the message in flight to us; our acknowledgement has nowhere to go
        await until(lambda: not driver.connected, "the lost connection")
        rec.commits[0].set_result(None)  # ... once it is stored
        b.start()
        await until(lambda: driver.connected, "the reconnect")  # the broker resends it first, with DUP set
        b.publish(topic, '{"temperature": 1.5}')  # the same payload in a new message: a reading
        b.publish(topic, '{"temperature": 2.5}')
        await until(lambda: 2.5 in [s.value for s in rec.samples], "the marker")
        for c in rec.commits:
            if not c.done():
                c.set_result(None)
        await driver.settle()
    assert [s.value for s in rec.samples] == [1.5, 1.5, 2.5]
    assert driver.counters["redelivered_already_stored"] == 1
    rec2 = Recorder()  # both were acknowledged: the session holds nothing more for us
    driver2 = MqttDriver(cfg.sensors, rec2.ctx(cfg))
    async with driving(driver2):
        await until(lambda: driver2.connected, "connection of the next run")
        b.publish(topic, '{"temperature": 2.5}')
        await until(lambda: rec2.samples, "the marker")
    assert [s.value for s in rec2.samples] == [2.5]


@pytest.mark.asyncio
async def test_retained_data_is_skipped_unless_allowed(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    broker.publish(f"zigbee2mqtt/{u}-a", '{"temperature": 9.0}', retain=True)
    broker.publish(f"zigbee2mqtt/{u}-b", '{"temperature": 8.0}', retain=True)
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, [
        {"id": "a", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}-a"},
        {"id": "b", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}-b", "use_retained": True},
    ])
    rec = Recorder()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver):
        await until(lambda: rec.samples, "the accepted retained reading")
        await until(lambda: driver.counters["retained_skipped"] >= 1, "the skipped retained reading")
    assert [(s.sensor, s.value) for s in rec.samples] == [("b", 8.0)]


# --------------------------------------------------------------------------- installer: unmapped and probe


@pytest.mark.asyncio
async def test_unmapped_topics_in_describe(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                 [{"id": "tas", "format": "tasmota", "topic": f"{u}-tas"}])
    rec = Recorder()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        broker.publish(f"tele/{u}-tas/SENSOR", '{"AM2301":{"Temperature":4.0,"Humidity":90},"TempUnit":"C"}')
        broker.publish(f"tele/{u}-new/SENSOR", '{"SHT3X":{"Temperature":5.0}}')
        await until(lambda: f"tele/{u}-new/SENSOR" in driver.describe()["unmapped"], "the unmapped topic")
        await until(lambda: rec.samples, "the mapped reading")
    info = driver.describe()
    assert info["unmapped"][f"tele/{u}-new/SENSOR"] == '{"SHT3X":{"Temperature":5.0}}'
    assert f"tele/{u}-tas/SENSOR" not in info["unmapped"]
    assert info["subscriptions"][f"tele/{u}-tas/SENSOR"] == 1 and info["subscriptions"]["tele/+/SENSOR"] == 0


@pytest.mark.asyncio
async def test_probe_lists_answers_and_unmapped(broker: Broker, tmp_path: Path) -> None:
    u = uid()
    broker.publish(f"zigbee2mqtt/{u}-room", '{"temperature": 3.5, "humidity": 91.0}', retain=True)
    broker.publish(f"zigbee2mqtt/{u}-stranger", '{"temperature": 12.0}', retain=True)
    cfg = config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"}, [
        {"id": "room", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}-room"},
        {"id": "silent", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}-silent"},
    ])
    rec = Recorder()
    result = await MqttDriver(cfg.sensors, rec.ctx(cfg)).probe(1.5)
    room, silent = result["sensors"]["room"], result["sensors"]["silent"]
    assert room["answered"] and room["values"] == {"temperature": 3.5, "humidity": 91.0}
    assert "retained" in room["detail"]
    assert not silent["answered"] and f"zigbee2mqtt/{u}-silent" in silent["detail"]
    assert result["unmapped"][f"zigbee2mqtt/{u}-stranger"] == '{"temperature": 12.0}'
    assert result["broker"]["connected"]
    assert rec.samples == []  # the probe never journals


@pytest.mark.asyncio
async def test_probe_reports_an_unreachable_broker(tmp_path: Path) -> None:
    from tests.conftest import free_port

    cfg = config(tmp_path, {"port": free_port(), "client_id": f"t-{uid()}"},
                 [{"id": "room", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/room"}])
    result = await MqttDriver(cfg.sensors, Recorder().ctx(cfg)).probe(1.0)
    assert not result["broker"]["connected"]
    assert not result["sensors"]["room"]["answered"] and "unreachable" in result["sensors"]["room"]["detail"]


@pytest.mark.asyncio
async def test_reconnects_after_the_broker_restarts(restartable_broker: RestartableBroker, tmp_path: Path) -> None:
    b, u = restartable_broker, uid()
    cfg = config(tmp_path, {"port": b.port, "client_id": f"t-{u}"},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])
    async with running(cfg) as d:
        drv = mqtt_driver(d)
        await until(lambda: drv.connected, "connection")
        b.publish(f"zigbee2mqtt/{u}", '{"temperature": 1.0}')
        await until_api(d, "z2m", (1.0, "°C"))
        b.stop()
        await until(lambda: not drv.connected, "the lost connection")
        sensor = (await zone_sensors(d))["z2m"]
        assert not sensor["online"] and "MQTT" in sensor["reason"]
        b.start()  # same port; the broker forgot the session (no persistence): the driver re-subscribes
        await until(lambda: drv.connected, "the reconnect")
        b.publish(f"zigbee2mqtt/{u}", '{"temperature": 2.0}')
        await until_api(d, "z2m", (2.0, "°C"))
        assert (await zone_sensors(d))["z2m"]["online"]
        assert drv.counters["connection_lost"] >= 1 and d.stats.get("driver_crashes") == 0


@pytest.mark.asyncio
async def test_unreadable_password_file_is_reported_not_crashed(tmp_path: Path) -> None:
    from tests.conftest import free_port

    cfg = config(tmp_path, {"port": free_port(), "username": "u", "password_file": str(tmp_path / "missing")},
                 [{"id": "z2m", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/x"}])
    rec = Recorder()
    driver = MqttDriver(cfg.sensors, rec.ctx(cfg))
    async with driving(driver) as task:
        await until(lambda: "password_file" in driver.state, "the password file problem")
        assert not task.done()
    assert rec.online[-1][:2] == ("z2m", False) and "password_file" in rec.online[-1][2]
