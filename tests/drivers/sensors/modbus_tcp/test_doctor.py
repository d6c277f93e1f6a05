"""`coldchain doctor` with gateways: a unit answering, a unit the gateway refuses, a gateway that is not there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.app.doctor import run_doctor
from daemon.app.plugins import parse_config
from tests.drivers.sensors.modbus_tcp.conftest import Gateway, free_port

CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: {tmp}/journal.db}}
zones:
  - {{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}}
sensors:
  - {{id: live, zone: z1, type: modbus_tcp, host: 127.0.0.1, tcp_port: {port}, framing: rtu, unit_id: 1, preset: xy_md02}}
  - {{id: odd, zone: z1, type: modbus_tcp, host: 127.0.0.1, tcp_port: {port}, framing: rtu, unit_id: 3, preset: xy_md02}}
  - {{id: gone, zone: z1, type: modbus_tcp, host: 127.0.0.1, tcp_port: {dead}, unit_id: 1, preset: xy_md02}}
api: {{enabled: false}}
"""


@pytest.mark.peer
@pytest.mark.asyncio
async def test_doctor_shows_each_device(gateways: Callable[..., Gateway], tmp_path: Path) -> None:
    gw, dead = gateways("rtu"), free_port()
    cfg = parse_config(CONFIG.format(tmp=tmp_path, port=gw.port, dead=dead), "config.yaml")
    rep = await run_doctor(cfg, "config.yaml", lang="en", seconds=3)
    text = rep.render()
    assert "✓ sensor live (Room 1) answered: temperature 30.5, humidity 54.6" in text, text
    assert f"✗ sensor odd (Room 1) did not answer: modbus_tcp:127.0.0.1:{gw.port}#3: exception response" in text, text
    assert (f"✗ sensor gone (Room 1) did not answer: modbus_tcp:127.0.0.1:{dead}#1: gateway down "
            "(cannot connect: Connection refused)") in text, text
    assert "serial port" not in text  # a gateway is no device node
    assert rep.problems >= 2
