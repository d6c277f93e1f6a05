"""The HACCP follow-up over HTTP: acknowledge needs a comment, staff record the corrective action, a manager
closes; each answer names who, and the roles hold."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Sample
from tests.conftest import make_config
from tests.daemon.api.test_api import CONFIG

T0 = 1_700_000_000.0
TOKENS = CONFIG.replace(
    "api: {enabled: true, host: 127.0.0.1, port: 0}",
    "api:\n  enabled: true\n  host: 127.0.0.1\n  port: 0\n  tokens:\n"
    "    - {name: zhang, role: staff, token: {value: staff-secret}}\n"
    "    - {name: wang, role: manager, token: {value: boss-secret}}\n"
    "    - {name: install, role: installer, token: {value: inst-secret}}\n",
)
STAFF = {"Authorization": "Bearer staff-secret"}
BOSS = {"Authorization": "Bearer boss-secret"}
INSTALLER = {"Authorization": "Bearer inst-secret"}


async def _wait_state(http: httpx.AsyncClient, want: str) -> dict[str, Any]:
    for _ in range(300):  # rules run right after the journal commit that released emit()
        rows = (await http.get("/api/v1/alerts")).json()["alerts"]
        if rows and rows[0]["state"] == want:
            return dict(rows[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no alarm became {want}: {rows}")


@pytest.mark.asyncio
async def test_ack_action_close_over_http(tmp_path: Any) -> None:
    clock = ManualClock(T0)
    d = Daemon(make_config(tmp_path, TOKENS), clock=clock)
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=10) as http:
            for _ in range(12):
                await d.pipeline.emit([Sample("s1", "temperature", 9.5, "C", ts=clock.now())])
                clock.advance(60)
            a = await _wait_state(http, "firing")
            base = f"/api/v1/alerts/{a['id']}"
            early = await http.post(f"{base}/action", json={"kind": "moved", "text": "x"}, headers=STAFF)
            assert early.status_code == 409 and "acknowledge" in early.text
            bare = await http.post(f"{base}/ack", json={}, headers=STAFF)
            assert bare.status_code == 422 and "comment" in bare.text
            assert (await http.post(f"{base}/ack", json={"comment": "在处理"}, headers=STAFF)).status_code == 200
            act = {"kind": "moved", "text": "移到2号库"}
            assert (await http.post(f"{base}/action", json=act, headers=INSTALLER)).status_code == 403
            bad = await http.post(f"{base}/action", json={"kind": "sold", "text": "x"}, headers=STAFF)
            assert bad.status_code == 422
            assert (await http.post(f"{base}/action", json=act, headers=STAFF)).status_code == 200
            for _ in range(12):
                await d.pipeline.emit([Sample("s1", "temperature", 6.0, "C", ts=clock.now())])
                clock.advance(60)
            await _wait_state(http, "resolved")
            assert (await http.post(f"{base}/close", json={}, headers=STAFF)).status_code == 403
            closed = await http.post(f"{base}/close", json={"comment": "复核无误"}, headers=BOSS)
            assert closed.status_code == 200 and closed.json()["closed_by"] == "wang"
            assert (await http.post(f"{base}/close", json={}, headers=BOSS)).status_code == 409
            detail = (await http.get(base, params={"lang": "zh-CN"})).json()
            assert [(x["who"], x["kind_text"], x["text"]) for x in detail["actions"]] == [("zhang", "已移库", "移到2号库")]
            steps = [(e["state"], e["who"]) for e in detail["events"]]
            assert ("corrective_action", "zhang") in steps and steps[-1] == ("closed", "wang")
            assert detail["closed"] is not None
    finally:
        await d.stop()
