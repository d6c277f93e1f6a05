"""The serial_line driver against device-side programs on socat pty pairs (real peers).

`ArduinoDht` prints DHTtester lines on its own, with garbage bytes between them, like an
Arduino that was just reset; `ReadResponder` answers the 4 bytes READ with `16.02C,55.85%`
(no line end), like the non-Modbus XY-MD02 revision.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from daemon.app.runtime import Daemon
from drivers.sensors.serial_line import SerialLineConfig, SerialLineDriver
from tests.conftest import make_config
from tests.drivers.sensors.conftest import PtyPair, running, until
from tests.drivers.sensors.fakes import Recorder, context

pytestmark = pytest.mark.peer

GOOD = b"Humidity: 45.00 %\tTemperature: 23.00 *C 73.40 *F\tHeat index: 22.95 *C 73.31 *F\r\n"
GOOD_UTF8 = "Humidity: 88.50%  Temperature: -3.50°C 25.70°F  Heat index: -4.00°C 24.80°F\r\n".encode()
ERROR = b"Failed to read from DHT sensor!\r\n"
NAN = b"Humidity: nan %\tTemperature: nan *C nan *F\tHeat index: nan *C nan *F\r\n"
GARBAGE = b"\xff\x00\xfe\x80DHTxx test!\r\n"


class Peer(threading.Thread):
    """A device program on the far end of a pty pair; stops when told or when the pty goes away."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.port = serial.Serial(str(path), 9600, timeout=0.02)
        self.stopping = threading.Event()

    def step(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.step()
        except (serial.SerialException, OSError):
            pass  # the cable was pulled
        finally:
            self.port.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


class ArduinoDht(Peer):
    """Prints garbage and then the current line, over and over (the sketch loops every ~2 s; faster here)."""

    def __init__(self, path: Path, line: bytes = GOOD) -> None:
        super().__init__(path)
        self.line = line

    def step(self) -> None:
        self.port.write(GARBAGE + self.line)
        self.stopping.wait(0.05)


class ReadResponder(Peer):
    """Answers READ (no CR/LF) with `answer` (no CR/LF); ignores everything else."""

    def __init__(self, path: Path, answer: bytes = b"16.02C,55.85%") -> None:
        super().__init__(path)
        self.answer, self.buf, self.requests = answer, b"", 0

    def step(self) -> None:
        self.buf = (self.buf + self.port.read(64))[-16:]
        if self.buf.endswith(b"READ"):
            self.buf = b""
            self.requests += 1
            self.port.write(self.answer)


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for p in started:
        p.stop()


def start(peers: list[Peer], peer: Peer) -> Any:
    peers.append(peer)
    peer.start()
    return peer


def cfg(sid: str, port: Path, **options: Any) -> SerialLineConfig:
    return SerialLineConfig.model_validate(
        {"id": sid, "zone": "z1", "type": "serial_line", "port": str(port), "interval": 0.5, **options}
    )


def values(rec: Recorder, sid: str) -> list[dict[str, float | None]]:
    return [{s.quantity: s.value for s in b if s.sensor == sid} for b in rec.batches if any(s.sensor == sid for s in b)]


def faults(rec: Recorder, sid: str) -> list[str]:
    return [s.fault for s in rec.samples(sid) if s.fault]


@pytest.mark.asyncio
async def test_dht_lines_errors_nan_and_garbage(pty_pair: Callable[[str], PtyPair], peers: list[Peer]) -> None:
    pair = pty_pair("DHT")
    arduino: ArduinoDht = start(peers, ArduinoDht(pair.device))
    rec = Recorder()
    driver = SerialLineDriver([cfg("dht", pair.client, preset="dht_tester", line_timeout=2)], context(rec))
    async with running(driver):
        await until(lambda: {"temperature": 23.0, "humidity": 45.0} in values(rec, "dht"), "a DHT reading")
        assert rec.online["dht"] == (True, "")
        arduino.line = ERROR
        await until(lambda: rec.online["dht"][0] is False, "the error line")
        assert rec.online["dht"][1] == f"serial_line:{pair.client}: device reports 'Failed to read from DHT sensor!'"
        arduino.line = NAN
        await until(lambda: any("printed nan" in f for f in faults(rec, "dht")), "the nan line")
        arduino.line = GOOD_UTF8
        await until(lambda: {"temperature": -3.5, "humidity": 88.5} in values(rec, "dht"), "a reading with °C")
    nan_batch = next(b for b in rec.batches if any(s.fault and "printed nan" in s.fault for s in b))
    assert [(s.quantity, s.value, s.fault) for s in nan_batch] == [
        ("temperature", None, f"serial_line:{pair.client}: device printed nan for temperature"),
        ("humidity", None, f"serial_line:{pair.client}: device printed nan for humidity"),
    ]
    good = [s for b in rec.batches for s in b if s.value is not None]
    assert all(s.unit in ("C", "%") for s in good)
    assert all(s.value in (23.0, 45.0, -3.5, 88.5) for s in good)  # garbage never became a value


@pytest.mark.asyncio
async def test_read_request_and_a_silent_device(pty_pair: Callable[[str], PtyPair], peers: list[Peer]) -> None:
    live, dead = pty_pair("MD02"), pty_pair("MUTE")
    responder: ReadResponder = start(peers, ReadResponder(live.device))
    rec = Recorder()
    drivers = [SerialLineDriver([cfg("md02", live.client, preset="xy_md02_read")], context(rec)),
               SerialLineDriver([cfg("mute", dead.client, preset="xy_md02_read", line_timeout=0.3)], context(rec))]
    async with running(drivers[0]), running(drivers[1]):
        await until(lambda: len(values(rec, "md02")) >= 3 and len(faults(rec, "mute")) >= 2, "polls of both ports")
        probe = await drivers[0].probe(5)
    assert all(v == {"temperature": 16.02, "humidity": 55.85} for v in values(rec, "md02"))
    assert responder.requests >= 3
    assert faults(rec, "mute")[0] == f"serial_line:{dead.client}: no matching line in 0.3 s"
    assert rec.online["mute"][0] is False and rec.online["md02"] == (True, "")
    assert probe == {"sensors": {"md02": {"answered": True, "values": {"temperature": 16.02, "humidity": 55.85},
                                          "detail": f"serial_line:{live.client}: answered"}}}


@pytest.mark.asyncio
async def test_unplug_and_replug(pty_pair: Callable[[str], PtyPair], peers: list[Peer]) -> None:
    pair = pty_pair("USB")
    first: ReadResponder = start(peers, ReadResponder(pair.device))
    rec = Recorder()
    driver = SerialLineDriver([cfg("md02", pair.client, preset="xy_md02_read")], context(rec))
    async with running(driver) as task:
        await until(lambda: len(values(rec, "md02")) >= 1, "a first reading")
        await asyncio.to_thread(pair.stop)
        await asyncio.to_thread(first.stop)
        await until(lambda: rec.online["md02"][0] is False, "offline after the unplug")
        assert "port down" in rec.online["md02"][1]
        await asyncio.to_thread(pair.start)
        start(peers, ReadResponder(pair.device, answer=b"4.50C,90.10%"))
        await until(lambda: {"temperature": 4.5, "humidity": 90.1} in values(rec, "md02"), "readings after replug")
        assert not task.done()
    assert rec.online["md02"] == (True, "")


DAEMON_CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: journal.db, flush_interval: 0.2, commit_interval: 0.2}}
zones:
  - {{id: z1, name: 1号库, alarms: {{temperature: {{low: -30, high: 40}}, humidity: {{enabled: false}}}}}}
sensors:
  - {{id: dht, zone: z1, type: serial_line, port: "{port}", preset: dht_tester, interval: 1s, line_timeout: 2s}}
notifiers:
  - {{id: out, type: console}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
api: {{enabled: false}}
"""


@pytest.mark.asyncio
async def test_readings_reach_the_journal_through_the_daemon(
    pty_pair: Callable[[str], PtyPair], peers: list[Peer], tmp_path: Path
) -> None:
    pair = pty_pair("DAEMON")
    start(peers, ArduinoDht(pair.device, GOOD_UTF8))
    daemon = Daemon(make_config(tmp_path, DAEMON_CONFIG.format(port=pair.client)))
    await daemon.start()
    try:
        await until(lambda: len(daemon.journal.readings.latest()) == 2, "the DHT reading in the journal")
        got = {r.quantity.value: r for r in daemon.journal.readings.latest()}
    finally:
        await daemon.stop()
    assert got["temperature"].value == -3.5 and got["humidity"].value == 88.5
    assert all(r.good and r.sensor == "dht" for r in got.values())
