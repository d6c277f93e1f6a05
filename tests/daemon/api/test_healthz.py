"""GET /healthz shows each uplink: connected, last error, last success, lag in readings and seconds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.api import create_app
from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.ports.model import Sample
from tests.conftest import MINIMAL, free_port, make_config
from tests.peers import InfluxD

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]


async def healthz(d: Daemon) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(d)), base_url="http://t") as c:
        resp = await c.get("/healthz")
        assert resp.status_code == 200
        return dict(resp.json())


async def poll(d: Daemon, check: Any, what: str, deadline: float = 30.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        body = await healthz(d)
        if check(body["uplinks"][0]):
            return body
        assert loop.time() < end, f"timed out waiting for {what}: {body['uplinks']}"
        await asyncio.sleep(0.05)


def daemon_with_sink(tmp_path: Path, url: str, db: str) -> Daemon:
    text = MINIMAL.replace("api: {enabled: false}", f"""api: {{enabled: false}}
sinks:
  - {{id: central, type: influxdb1, url: "{url}", database: {db}, timeout: 2}}
""")
    cfg = make_config(tmp_path, text)
    cfg.sensors[0].interval = 3600.0  # readings come from the test, not the simulated room
    cfg.storage.flush_interval = 0.05  # the test's `emit` waits for the commit: not the default minute
    return Daemon(cfg, clock=Clock())


async def test_uplink_connected_and_caught_up(influxd: InfluxD, influx_db: str, tmp_path: Path) -> None:
    d = daemon_with_sink(tmp_path, influxd.url, influx_db)
    await d.start()
    try:
        await d.pipeline.emit([Sample("s1", "temperature", 6.25, "C", ts=d.clock.now() - 30)])
        body = await poll(d, lambda u: u["connected"] and u["lag_readings"] == 0, "uplink caught up")
    finally:
        await d.stop()
    up = body["uplinks"][0]
    assert up["sink"] == "central" and up["type"] == "influxdb1" and up["last_error"] is None
    assert up["lag_seconds"] == 0 and up["sent"] >= 1 and up["last_success_at"] is not None


async def test_uplink_down_shows_lag_and_error(tmp_path: Path) -> None:
    d = daemon_with_sink(tmp_path, f"http://127.0.0.1:{free_port()}", "cc")
    await d.start()
    try:
        await d.pipeline.emit([Sample("s1", "temperature", 6.25, "C", ts=d.clock.now() - 600)])
        body = await poll(d, lambda u: u["connected"] is False and u["lag_readings"] >= 1, "uplink down")
    finally:
        await d.stop()
    up = body["uplinks"][0]
    assert "influxdb1:central" in up["last_error"] and up["lag_seconds"] >= 600
    assert body["status"] == "ok"  # a dead 4G link is shown, but the box itself is healthy
