"""`coldchain doctor` against pymodbus on a pty: live and silent addresses, a missing port, a scan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.app.doctor import run_doctor
from daemon.app.plugins import parse_config
from tests.drivers.sensors.conftest import PtyPair
from tests.drivers.sensors.modbus_rtu.test_peer import DEVICES, ModbusPeer

CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: {tmp}/journal.db}}
zones:
  - {{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}}
sensors:
  - {{id: live, zone: z1, type: modbus_rtu, port: {port}, address: 1, preset: xy_md02, timeout: 0.3}}
  - {{id: dead, zone: z1, type: modbus_rtu, port: {port}, address: 7, preset: xy_md02, timeout: 0.3}}
  - {{id: gone, zone: z1, type: modbus_rtu, port: {tmp}/ttyNOPE, address: 1, preset: xy_md02}}
api: {{enabled: false}}
"""


@pytest.mark.peer
@pytest.mark.asyncio
async def test_doctor_on_a_real_bus(pty_pair: Callable[[str], PtyPair], tmp_path: Path) -> None:
    pair = pty_pair("DOC")
    peer = ModbusPeer(pair, DEVICES).start()
    try:
        cfg = parse_config(CONFIG.format(tmp=tmp_path, port=pair.client), "config.yaml")
        rep = await run_doctor(cfg, "config.yaml", lang="en", seconds=2, scan=True)
    finally:
        peer.stop()
    text = rep.render()
    assert "✓ sensor live (Room 1) answered: temperature 30.5, humidity 54.6" in text, text
    assert "✗ sensor dead (Room 1) did not answer" in text, text
    assert f"✗ serial port {tmp_path}/ttyNOPE missing" in text, text
    assert f"✓ Modbus addresses answering on {pair.client}: 1, 2" in text, text
    assert rep.problems >= 3
