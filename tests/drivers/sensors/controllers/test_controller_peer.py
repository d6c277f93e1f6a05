"""A cold-room controller (preset `example_controller`) against pymodbus's servers: over TCP in a running
daemon, its defrost bit mutes the high-temperature alarm and its alarm word pages the staff; on an RS485
pty (socat) `coldchain doctor` shows it answering with its defrost and alarm state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from daemon.app.doctor import run_doctor
from daemon.app.plugins import parse_config
from daemon.app.runtime import Daemon
from tests.drivers.sensors.conftest import PtyPair
from tests.drivers.sensors.modbus_rtu.test_peer import ModbusPeer
from tests.drivers.sensors.modbus_tcp.conftest import Gateway, gateways  # noqa: F401  (the fixture)
from tests.peers import until

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]
PROBE, STATUS, ALARMS = 0x0100, 0x0500, 0x0501  # the example preset's registers
DEFROST_BIT = 1 << 2


def holding(probe: int, status: int = 0, alarms: int = 0) -> list[int]:
    hr = [0] * (ALARMS + 1)
    hr[PROBE], hr[STATUS], hr[ALARMS] = probe, status, alarms
    return hr


CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: {tmp}/journal.db, flush_interval: 0.05, commit_interval: 0.05}}
zones:
  - {{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin, alarms: {{temperature: {{delay: 0}}}}}}
sensors:
  - {{id: xr1, zone: z1, type: {type}, {where}, preset: example_controller, interval: 0.3s, timeout: 0.3}}
notifiers:
  - {{id: out, type: console}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
api: {{enabled: false}}
"""


def values(d: Daemon, quantity: str) -> list[float | None]:
    return [r.value for r in d.journal.readings.query(sensor="xr1", quantity=quantity)]


async def test_defrost_mutes_the_high_alarm_and_the_alarm_word_pages(gateways: Callable[..., Gateway],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    gw = gateways("tcp", {"1": {"hr": holding(60)}})  # 6.0 °C, no defrost, no alarm
    where = f"host: 127.0.0.1, tcp_port: {gw.port}, unit_id: 1"
    cfg = parse_config(CONFIG.format(tmp=tmp_path, type="modbus_tcp", where=where), "config.yaml")
    client = ModbusTcpClient("127.0.0.1", port=gw.port)
    assert client.connect()  # type: ignore[no-untyped-call]
    d = Daemon(cfg)
    await d.start()
    try:
        await until(lambda: 6.0 in values(d, "temperature") and values(d, "defrost") == [0.0], "the first poll")
        # the controller defrosts and the air warms to 15 °C: stored, but no high-temperature alarm
        await asyncio.to_thread(client.write_register, STATUS, DEFROST_BIT, device_id=1)
        await until(lambda: values(d, "defrost") == [0.0, 1.0], "the defrost bit")
        await asyncio.to_thread(client.write_register, PROBE, 150, device_id=1)
        await until(lambda: values(d, "temperature").count(15.0) >= 3, "three warm polls during the defrost")
        assert [a.kind for a in d.journal.alerts.find()] == []
        # its own alarm word: bit 2 (high temperature, as the controller sees it) pages the staff
        await asyncio.to_thread(client.write_register, ALARMS, 0x0004, device_id=1)
        await until(lambda: [a.kind for a in d.journal.alerts.find()] == ["controller_alarm"], "the controller alarm")
        await until(d.journal.outbox.find, "the message")
        (msg,) = d.journal.outbox.find()
        assert msg.contact == "zhang" and "冷库控制器xr1报警（报警寄存器0x0004）" in msg.text, msg.text
        assert values(d, "controller_alarm") == [0.0, 4.0]  # kept once per change, not per poll
    finally:
        client.close()  # type: ignore[no-untyped-call]
        await d.stop()


async def test_doctor_shows_the_controller_on_a_bus(pty_pair: Callable[[str], PtyPair], tmp_path: Path) -> None:
    pair = pty_pair("XR")
    peer = ModbusPeer(pair, {"1": {"hr": holding(0xFFCE, DEFROST_BIT, 0x0011)}}).start()  # -5.0 °C
    try:
        where = f"port: {pair.client}, address: 1"
        cfg = parse_config(CONFIG.format(tmp=tmp_path, type="modbus_rtu", where=where), "config.yaml")
        text = (await run_doctor(cfg, "config.yaml", lang="en", seconds=2)).render()
    finally:
        peer.stop()
    assert "✓ sensor xr1 (Room 1) answered: temperature -5.0, defrost 1.0, controller_alarm 17.0" in text, text
