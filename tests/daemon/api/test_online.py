"""One meaning of "online": /healthz, /metrics and the zones API agree about a silent sensor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.api import create_app
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from tests.conftest import make_config

pytestmark = pytest.mark.asyncio
T0 = 1_700_000_000.0


async def views(d: Daemon) -> tuple[int, str, bool]:
    """(sensors_online of /healthz, the metric line of s1, online of s1 in the zones API)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(d)), base_url="http://t") as c:
        health: dict[str, Any] = (await c.get("/healthz")).json()
        metrics = (await c.get("/metrics")).text
        zones: dict[str, Any] = (await c.get("/api/v1/zones")).json()
    line = next(ln for ln in metrics.splitlines() if ln.startswith("coldchain_sensor_online{"))
    return health["sensors_online"], line, zones["zones"][0]["sensors"][0]["online"]


async def test_silent_sensor_is_offline_everywhere(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    d = Daemon(make_config(tmp_path), clock=clock)
    try:
        r = Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 6.5, T0)
        d.journal.readings.append([r])
        d.live.update([r])
        d.live.set_online("s1", True)  # the driver still runs: only the data stopped
        assert await views(d) == (1, 'coldchain_sensor_online{sensor="s1",zone="z1"} 1', True)
        clock.advance(d.cfg.sensors[0].stale_after_s + 60)
        fired = d.alerts.apply(d.rules.tick(clock.now()))
        assert [row.kind for _, row in fired] == ["no_data"]
        assert await views(d) == (0, 'coldchain_sensor_online{sensor="s1",zone="z1"} 0', False)
        d.alerts.acknowledge(fired[0][1].id, "zhang", "checking", "web")  # acknowledged is still silent
        assert await views(d) == (0, 'coldchain_sensor_online{sensor="s1",zone="z1"} 0', False)
    finally:
        d.journal.close()
