"""The modbus_rtu driver against pymodbus's own RTU server on a socat pty pair (a real peer).

Bus A carries a pymodbus server with devices 1 (30.5 C, 54.6 %) and 2 (-20.5 C, 54.6 %);
address 9 is not served there (pymodbus answers exception 0x04 for it). Bus B is a pty
pair with nothing on the far end: true RS485 silence.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.app.runtime import Daemon
from drivers.sensors.modbus_rtu import ModbusRtuConfig, ModbusRtuDriver, scan
from tests.conftest import make_config
from tests.drivers.sensors.conftest import DEADLINE, PtyPair, running, until
from tests.drivers.sensors.fakes import Recorder, context

pytestmark = pytest.mark.peer

PEER = Path(__file__).with_name("peer_server.py")
DEVICES = {"1": {"ir": [0, 305, 546], "hr": [546, 305]}, "2": {"ir": [0, 0xFF33, 546], "hr": [546, 0xFF33]}}


class ModbusPeer:
    """pymodbus's serial server as a subprocess on the device end of a pty pair."""

    def __init__(self, pair: PtyPair, spec: dict[str, Any]) -> None:
        self.pair, self.spec = pair, spec
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ModbusPeer:
        self.proc = subprocess.Popen([sys.executable, str(PEER), str(self.pair.device), json.dumps(self.spec)])
        first = int(next(iter(self.spec)))
        end = time.monotonic() + DEADLINE
        while scan(str(self.pair.client), addresses=[first], timeout=0.2, function_code=4, register=1) != [first]:
            assert self.proc.poll() is None, "pymodbus server exited"
            assert time.monotonic() < end, "pymodbus server did not answer"
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc = None


@pytest.fixture
def bus(pty_pair: Callable[[str], PtyPair]) -> Iterator[tuple[PtyPair, ModbusPeer]]:
    pair = pty_pair("BUSA")
    peer = ModbusPeer(pair, DEVICES).start()
    yield pair, peer
    peer.stop()


def th(sid: str, port: Path, address: int, **options: Any) -> ModbusRtuConfig:
    return ModbusRtuConfig.model_validate({
        "id": sid, "zone": "z1", "type": "modbus_rtu", "port": str(port), "address": address,
        "preset": "xy_md02", "interval": "1s", "timeout": 0.3, **options,
    })


def good(rec: Recorder, sid: str) -> list[dict[str, float]]:
    """Per poll, the values a sensor delivered (fault-free batches only)."""
    out = []
    for batch in rec.batches:
        mine = [s for s in batch if s.sensor == sid]
        if mine and all(s.fault is None for s in mine):
            out.append({s.quantity: s.value for s in mine if s.value is not None})
    return out


def faults(rec: Recorder, sid: str) -> list[str]:
    return [s.fault for s in rec.samples(sid) if s.fault]


@pytest.mark.asyncio
async def test_dead_devices_do_not_stop_the_live_ones(
    bus: tuple[PtyPair, ModbusPeer], pty_pair: Callable[[str], PtyPair]
) -> None:
    pair, _ = bus
    quiet = pty_pair("BUSB")  # nothing on the far end
    rec = Recorder()
    bus_a = [th("d1", pair.client, 1), th("d2", pair.client, 2), th("d9", pair.client, 9)]
    bus_b = [th("mute", quiet.client, 1)]
    groups = ModbusRtuDriver.group([*bus_a, *bus_b])
    assert [[s.id for s in g] for g in groups] == [["d1", "d2", "d9"], ["mute"]]
    drivers = [ModbusRtuDriver(g, context(rec)) for g in groups]
    async with running(drivers[0]), running(drivers[1]):
        # every device named in the asserts below: d2 is polled between d1 and d9, and under load the
        # last poll of a round may not have answered yet when d9's third fault is in
        await until(lambda: len(good(rec, "d1")) >= 3 and len(good(rec, "d2")) >= 3 and len(faults(rec, "d9")) >= 3
                    and len(faults(rec, "mute")) >= 2, "three polls of bus A and two of bus B")
        info = drivers[0].describe()
    assert all(v == {"temperature": 30.5, "humidity": 54.6} for v in good(rec, "d1"))
    assert all(v == {"temperature": -20.5, "humidity": 54.6} for v in good(rec, "d2"))
    assert len(good(rec, "d2")) >= 3
    # unserved address: the pymodbus simulator answers exception 0x04 (a real bus would stay silent)
    assert all(f.startswith(f"modbus_rtu:{pair.client}#9: exception response") for f in faults(rec, "d9"))
    assert all(f == f"modbus_rtu:{quiet.client}#1: no answer to FC04 0x0001+2 in 0.3 s" for f in faults(rec, "mute"))
    assert {s.quantity for s in rec.samples("mute")} == {"temperature", "humidity"}
    assert all(s.value is None for s in rec.samples("mute"))
    assert rec.online["d1"] == (True, "") and rec.online["d2"] == (True, "")
    assert rec.online["d9"][0] is False and "#9" in rec.online["d9"][1]
    assert rec.online["mute"][0] is False and "no answer" in rec.online["mute"][1]
    assert info["bus"] == "open"
    assert info["sensors"]["d1"]["values"] == {"temperature": 30.5, "humidity": 54.6}
    assert info["sensors"]["d9"]["online"] is False and info["sensors"]["d9"]["last_error"]


@pytest.mark.asyncio
async def test_unplug_and_replug_resumes_without_restart(bus: tuple[PtyPair, ModbusPeer]) -> None:
    pair, peer = bus
    rec = Recorder()
    driver = ModbusRtuDriver([th("d1", pair.client, 1, interval=0.5)], context(rec))
    async with running(driver) as task:
        await until(lambda: len(good(rec, "d1")) >= 1, "a first reading")
        await asyncio.to_thread(peer.stop)
        await asyncio.to_thread(pair.stop)  # the adapter is pulled: the port node disappears
        await until(lambda: rec.online["d1"][0] is False, "d1 offline")
        assert "port down" in rec.online["d1"][1]
        await until(lambda: driver.describe()["bus"] == "down", "bus down")
        before = len(good(rec, "d1"))
        await asyncio.to_thread(pair.start)  # plugged back in
        await asyncio.to_thread(peer.start)
        await until(lambda: len(good(rec, "d1")) >= before + 2, "readings after replug")
        assert not task.done()
    assert rec.online["d1"] == (True, "")
    assert any("port down" in f for f in faults(rec, "d1"))
    assert good(rec, "d1")[-1] == {"temperature": 30.5, "humidity": 54.6}


@pytest.mark.asyncio
async def test_probe_asks_each_device_once(bus: tuple[PtyPair, ModbusPeer], pty_pair: Callable[[str], PtyPair]) -> None:
    pair, _ = bus
    rec = Recorder()
    driver = ModbusRtuDriver([th("d1", pair.client, 1), th("d9", pair.client, 9)], context(rec))
    try:
        result = await driver.probe(5.0)
    finally:
        await driver.close()
    assert result["sensors"]["d1"] == {"answered": True, "values": {"temperature": 30.5, "humidity": 54.6},
                                       "detail": f"modbus_rtu:{pair.client}#1: answered"}
    assert result["sensors"]["d9"]["answered"] is False
    assert "#9: exception response" in result["sensors"]["d9"]["detail"]
    assert rec.batches == [] and rec.online == {}


def test_scan_lists_served_addresses(bus: tuple[PtyPair, ModbusPeer]) -> None:
    pair, _ = bus
    # pymodbus answers every address (0x04 for unknown ones), so scan a served range only
    assert scan(str(pair.client), addresses=[1, 2], timeout=0.3, function_code=4, register=1) == [1, 2]


DAEMON_CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: journal.db, flush_interval: 0.2, commit_interval: 0.2}}
zones:
  # wide limits: the peer's fixed 30.5 / -20.5 C must not start alarms while the test shuts down
  - {{id: z1, name: 1号库, alarms: {{temperature: {{low: -30, high: 40}}, humidity: {{enabled: false}}}}}}
sensors:
  - {{id: th1, zone: z1, type: modbus_rtu, port: "{port}", address: 1, preset: xy_md02, interval: 1s, timeout: 0.3}}
  - {{id: th2, zone: z1, type: modbus_rtu, port: "{port}", address: 2, preset: xy_md02, interval: 1s, timeout: 0.3}}
notifiers:
  - {{id: out, type: console}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
api: {{enabled: false}}
"""


@pytest.mark.asyncio
async def test_readings_reach_the_journal_through_the_daemon(bus: tuple[PtyPair, ModbusPeer], tmp_path: Path) -> None:
    pair, _ = bus
    cfg = make_config(tmp_path, DAEMON_CONFIG.format(port=pair.client))
    daemon = Daemon(cfg)
    await daemon.start()
    try:
        def latest() -> dict[tuple[str, str], Any]:
            return {(r.sensor, r.quantity.value): r for r in daemon.journal.readings.latest()}

        await until(lambda: len(latest()) == 4, "both devices' readings in the journal")
        got = latest()
    finally:
        await daemon.stop()
    assert got["th1", "temperature"].value == 30.5 and got["th1", "humidity"].value == 54.6
    assert got["th2", "temperature"].value == -20.5 and got["th2", "humidity"].value == 54.6
    assert all(r.good for r in got.values())
    assert daemon.live.sensors["th1"].online
