"""A lot's excursions are the lot's: its commodity's range, its stay's time, the alarm's real state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.api import create_app
from daemon.app.runtime import Daemon
from daemon.lots.store import Lots, Who
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from tests.conftest import make_config

pytestmark = pytest.mark.asyncio
T = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai
CONFIG = """
site: {id: t1, name: 测试冷库}
storage: {journal: journal.db}
zones:
  - {id: z1, name: 1号库, name_en: Room 1, commodity: orange_sweet}
  - {id: z2, name: 2号库, name_en: Room 2, commodity: orange_sweet}
  - {id: z3, name: 3号库, name_en: Room 3, commodity: mandarin, alarms: {temperature: {low: 3.5}}}
sensors:
  - {id: s1, zone: z1, type: simulated, setpoint: 6.0}
  - {id: s2, zone: z2, type: simulated, setpoint: 6.0}
  - {id: s3, zone: z3, type: simulated, setpoint: 6.0}
api: {enabled: false}
"""
STAFF = Who("zhang", "staff")


def fill(d: Daemon) -> None:
    """z1 at 12 °C for 4 h (alarm open, acknowledged); z2 and z3 at 4 °C from 01:00 to 03:06, else 6 °C."""
    rows = []
    for i in range(240):
        ts = T + 60 * i
        cool = 4.0 if 60 <= i < 186 else 6.0
        rows += [Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 12.0, ts),
                 Reading("t1", "z2", "s2", Quantity.TEMPERATURE, cool, ts),
                 Reading("t1", "z3", "s3", Quantity.TEMPERATURE, cool, ts)]
    d.journal.readings.append(rows)
    with d.journal.transaction() as db:  # the room's alarm: open since 00:00, acknowledged at 00:20
        db.execute("INSERT INTO alerts (id, key, zone, sensor, kind, severity, state, started, fired, acked, acked_by,"
                   " value, limit_value, peak) VALUES (5, 'z1/s1/temp_high', 'z1', 's1', 'temp_high', 'warning',"
                   " 'acknowledged', ?, ?, ?, 'zhang', 12.0, 8.0, 12.0)", (T, T + 600, T + 1200))


async def get(d: Daemon, path: str) -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(d)), base_url="http://t") as c:
        r = await c.get(path)
        assert r.status_code == 200
        return r.json() if path.startswith("/api") else r.text


async def test_lot_excursions_are_the_lots(tmp_path: Path) -> None:
    clock = ManualClock(T + 4 * 3600)
    d = Daemon(make_config(tmp_path, CONFIG), clock=clock)
    try:
        fill(d)
        lots = Lots(d.journal, d.cfg)
        lots.check_in("LOT-A", "mandarin", "z1", T + 7200, STAFF)  # 31 min in the warm room
        lots.check_out("LOT-A", T + 7200 + 31 * 60, STAFF)
        lots.check_in("LOT-B", "mandarin", "z2", T, STAFF)  # 4 h in an orange room kept at 4 °C for 126 min
        lots.check_out("LOT-B", T + 4 * 3600, STAFF)
        lots.check_in("LOT-C", "mandarin", "z3", T, STAFF)  # a mandarin room whose own low limit is 3.5
        lots.check_out("LOT-C", T + 4 * 3600, STAFF)

        (a,) = (await get(d, "/api/v1/trace/LOT-A"))["excursions"]
        assert (a["kind"], a["minutes"], a["alarm_state"], a["acknowledged"]) == ("temp_high", 31.0, "acknowledged",
                                                                                  True)
        assert (a["start"], a["end"], a["peak"], a["limit"]) == (T + 7200, T + 7200 + 31 * 60, 12.0, 8.0)
        (b,) = (await get(d, "/api/v1/trace/LOT-B"))["excursions"]
        assert (b["kind"], b["minutes"], b["limit"], b["alarm_state"]) == ("temp_low", 126.0, 5.0, None)
        c = await get(d, "/api/v1/trace/LOT-C")
        assert c["excursions"] == [] and c["limits"] == {"low": 3.5, "high": 8.0}  # the room's 3.5 is the limit there
        assert c["temperature"]["minutes_below"] == 0

        page_a = await get(d, "/trace/LOT-A?lang=zh-CN")
        assert "已确认，告警未结束" in page_a and "31 分钟" in page_a and "157" not in page_a and "已恢复" not in page_a
        page_b = await get(d, "/trace/LOT-B?lang=en")
        assert "below the minimum 5.0 °C (chilling injury risk)" in page_b and "126 Minutes" in page_b
        assert "no room alarm" in page_b
    finally:
        d.journal.close()
