"""Peers misbehave one at a time under a running daemon; every other path keeps working.

One daemon reads an MQTT sensor (real Mosquitto) and a serial line sensor (a socat pty pair with a
device thread printing lines), forwards to a real InfluxDB 1.6.7 through a loopback proxy that can
answer 500, stall past the sink's timeout, or refuse one sensor's points as InfluxDB does (400
"partial write"). In each phase: readings of the healthy paths are journaled and a new temperature
alarm is raised and sent. Afterwards: InfluxDB holds every journaled reading but the refused ones.

A modem that stops answering or is unplugged: `test_modem_faults.py`.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from tests.conftest import make_config
from tests.drivers.sensors.conftest import PtyPair
from tests.drivers.sensors.mqtt.conftest import RestartableBroker
from tests.drivers.sensors.mqtt.test_driver import mqtt_driver, uid, until
from tests.peers import InfluxD

pytestmark = pytest.mark.peer

CONFIG = """
site: {{id: peers, name: 外部故障}}
storage: {{journal: journal.db, flush_interval: 0.05, commit_interval: 0.05}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, client_id: "{client}", persistent_session: true,
        reconnect_min: 1, reconnect_max: 2}}
zones:
  - id: z1
    name: 1号库
    commodity: mandarin
    alarms: {{temperature: {{high: 8.0, delay: 0s, clear_delay: 0s}}, no_data: false}}
sensors:
  - {{id: mq, zone: z1, type: mqtt, format: json, topic: "{topic}", values: {{temperature: t}}}}
  - {{id: sl, zone: z1, type: serial_line, port: "{tty}", pattern: 'T=(?P<temperature>-?[0-9.]+)',
     interval: 0.5, line_timeout: 1}}
  - {{id: bad, zone: z1, type: mqtt, format: json, topic: "{topic}-bad", values: {{temperature: t}}}}
sinks:
  - {{id: central, type: influxdb1, url: "{proxy}", database: {db}, batch_size: 50, timeout: 1}}
notifiers:
  - {{id: out, type: console, stream: log}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
api: {{enabled: false}}
"""


class Proxy:
    """Between the daemon and InfluxDB: `mode` is pass, 500 or stall; lines of sensor=bad are refused
    the way InfluxDB refuses one point of a batch (the rest written, 400 partial write)."""

    def __init__(self, target: str) -> None:
        self.mode = "pass"
        self.refused = 0
        pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if proxy.mode == "stall":
                    time.sleep(3)  # past the sink's 1 s timeout
                if proxy.mode in ("500", "stall"):
                    return self._answer(500, b'{"error":"engine: cache-max-memory-size exceeded"}')
                lines = body.decode().splitlines()
                good = [ln for ln in lines if ",sensor=bad," not in ln and ",sensor=bad " not in ln]
                if good:
                    r = pool.request("POST", target + self.path, body="\n".join(good).encode())
                    if r.status != 204:
                        return self._answer(r.status, r.data)
                if len(good) < len(lines):
                    proxy.refused += 1
                    return self._answer(400, b'{"error":"partial write: field type conflict: input field '
                                             b'\\"temperature\\" on measurement \\"readings\\" is type float, '
                                             b'already exists as type string dropped=1"}')
                self._answer(204, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a stalled answer finds the sink gone (it timed out): that broken pipe is the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SerialDevice:
    """The device end of a pty pair: prints `T=<value>` every 0.1 s; survives the pair going away."""

    def __init__(self, pair: PtyPair) -> None:
        self.pair, self.value, self.running = pair, 5.0, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        fd = None
        while self.running:
            try:
                if fd is None:
                    fd = os.open(self.pair.device, os.O_WRONLY | os.O_NOCTTY)
                os.write(fd, f"T={self.value}\r\n".encode())
            except OSError:
                if fd is not None:
                    os.close(fd)
                fd = None
            time.sleep(0.1)
        if fd is not None:
            os.close(fd)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=5)


@pytest.fixture
def proxy(influxd: InfluxD) -> Iterator[Proxy]:
    p = Proxy(influxd.url)
    yield p
    p.close()


def count(d: Daemon, sensor: str) -> int:
    return len(d.journal.readings.query(sensor=sensor, limit=1_000_000))


async def grows(d: Daemon, sensor: str, what: str, by: int = 3) -> None:
    """Readings of `sensor` keep being journaled."""
    n = count(d, sensor)
    await until(lambda: count(d, sensor) >= n + by, f"{sensor} readings journaled while {what}")


async def alarm_cycle(d: Daemon, sensor: str, set_value: object, what: str) -> None:
    """A new temperature alarm for `sensor` is raised and sent, then resolved."""
    before = {a.id for a in d.journal.alerts.find(limit=100_000)}

    def new() -> list[int]:
        return [a.id for a in d.journal.alerts.find(limit=100_000)
                if a.id not in before and a.kind == "temp_high" and a.sensor == sensor]

    await set_value(9.5)  # type: ignore[operator]
    (aid,) = await until(new, f"a temperature alarm on {sensor} while {what}")
    await until(lambda: d.journal.outbox.find(alert_id=aid, state="sent"), f"the alarm on {sensor} sent while {what}")
    await set_value(5.0)  # type: ignore[operator]
    await until(lambda: (a := d.journal.alerts.get(aid)) is not None and a.state == "resolved",
                f"the alarm on {sensor} resolved while {what}")


@pytest.mark.asyncio
# long: each peer fails in turn against one running daemon; the story needs its order
async def test_each_peer_fails_and_the_other_paths_keep_working(
        restartable_broker: RestartableBroker, influxd: InfluxD, influx_db: str, proxy: Proxy,
        pty_pair: object, tmp_path: Path) -> None:
    pair: PtyPair = pty_pair("SL")  # type: ignore[operator]
    device = SerialDevice(pair)
    topic = f"faults/peers/{uid()}"
    cfg = make_config(tmp_path, CONFIG.format(mqtt_port=restartable_broker.port, client=f"peers-{uid()}",
                                              topic=topic, tty=pair.client, proxy=proxy.url, db=influx_db))
    d = Daemon(cfg, clock=Clock())
    d.forwarders[0].backoff_max = 2.0  # a test minute, not a field hour, between retries
    d.forwarders[0].poll_interval = 0.2

    async def mqtt_value(v: float) -> None:
        await asyncio.to_thread(restartable_broker.publish, topic, f'{{"t": {v}}}')

    async def serial_value(v: float) -> None:
        device.value = v

    async def mqtt_keeps_coming(what: str) -> None:
        n = count(d, "mq")
        for _ in range(3):
            await mqtt_value(5.0)
        await until(lambda: count(d, "mq") >= n + 3, f"mq readings journaled while {what}")

    await d.start()
    try:
        await until(lambda: mqtt_driver(d).connected, "the MQTT connection")
        for _ in range(100):  # the subscription may lag the connection by a moment: publish until one lands
            await mqtt_value(5.0)
            if count(d, "mq"):
                break
            await asyncio.sleep(0.2)
        await grows(d, "sl", "starting")
        await asyncio.to_thread(restartable_broker.publish, f"{topic}-bad", '{"t": 5.0}')
        await until(lambda: proxy.refused > 0, "the refused point reported by the proxy")

        for mode in ("500", "stall"):
            proxy.mode = mode
            await until(lambda: d.forwarders[0].state.failures > 0, f"the forwarder seeing InfluxDB {mode}")
            await mqtt_keeps_coming(f"InfluxDB answers {mode}")
            await grows(d, "sl", f"InfluxDB answers {mode}")
            await alarm_cycle(d, "mq", mqtt_value, f"InfluxDB answers {mode}")
            proxy.mode = "pass"

        restartable_broker.stop()
        await until(lambda: not mqtt_driver(d).connected, "the daemon noticing the broker gone")
        await grows(d, "sl", "the broker is down")
        await alarm_cycle(d, "sl", serial_value, "the broker is down")
        restartable_broker.start()
        await until(lambda: mqtt_driver(d).connected, "the MQTT reconnection", timeout=30)
        await mqtt_keeps_coming("the broker is back")

        pair.stop()  # the USB adapter pulled
        await until(lambda: d.live.sensors["sl"].online is False, "the serial sensor offline")
        await mqtt_keeps_coming("the serial port is gone")
        await alarm_cycle(d, "mq", mqtt_value, "the serial port is gone")
        pair.start()  # plugged in again, same name
        await until(lambda: d.live.sensors["sl"].online is True, "the serial sensor back online", timeout=30)
        await grows(d, "sl", "the serial port is back")
        await alarm_cycle(d, "sl", serial_value, "the serial port is back")

        # the uplink catches up: every journaled reading but the refused ones is in InfluxDB
        await until(lambda: d.journal.cursors.get("sink:central") == d.journal.readings.max_id(), "the backlog forwarded",
                    timeout=60)
    finally:
        device.stop()
        await d.stop()
    stored = {(r.sensor, round(r.ts * 1000)) for r in d.journal.readings.query(limit=1_000_000) if r.value is not None}
    got = {(p["sensor"], p["time"]) for p in influxd.points(influx_db, "readings")
           if p.get("temperature") is not None}
    assert got == {k for k in stored if k[0] != "bad"}
    assert d.stats.get("forward_rejected") >= 1
