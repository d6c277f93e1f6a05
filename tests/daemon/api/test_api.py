"""The API serves live zones, readings, alerts and the page from a running daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Sample
from tests.conftest import MINIMAL, make_config

T0 = 1_700_000_000.0
# The tests hand readings over with `Pipeline.emit`, which waits for their commit: a 60 s `flush_interval` (the
# default since session 12) would make each one wait a minute.
CONFIG = MINIMAL.replace("api: {enabled: false}", "api: {enabled: true, host: 127.0.0.1, port: 0}").replace(
    "type: simulated, setpoint: 6.5}", "type: simulated, setpoint: 6.5, failures: [{kind: silent, at: 0}]}"
).replace("storage: {journal: journal.db}", "storage: {journal: journal.db, flush_interval: 0.05}")


@pytest.mark.asyncio
async def test_api_end_to_end(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    d = Daemon(make_config(tmp_path, CONFIG), clock=clock)
    await d.start()
    try:
        base = f"http://127.0.0.1:{d.api_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            # readings arrive through the same path a driver uses
            await d.pipeline.emit([Sample("s1", "temperature", 9.0, "C", ts=T0), Sample("s1", "humidity", 91, "%")])
            for i in range(1, 12):
                clock.advance(60)
                await d.pipeline.emit([Sample("s1", "temperature", 9.0 + i / 100, "C", ts=clock.now())])

            for _ in range(200):
                zones = (await http.get("/api/v1/zones")).json()
                if zones["zones"][0]["state"] == "firing":
                    break
                await asyncio.sleep(0.02)
            (z,) = zones["zones"]
            assert z["id"] == "z1" and z["commodity"]["key"] == "mandarin" and z["limits"]["temp_high"] == 8.0
            assert z["state"] == "firing"
            (s,) = z["sensors"]
            assert s["readings"]["temperature"]["value"] == pytest.approx(9.11)
            assert s["readings"]["temperature"]["unit"] == "°C" and s["readings"]["humidity"]["value"] == 91
            assert z["alerts"][0]["kind"] == "temp_high" and z["alerts"][0]["kind_text"] == "温度过高"
            en = (await http.get("/api/v1/zones", params={"lang": "en"})).json()
            assert en["zones"][0]["name"] == "Room 1" and en["zones"][0]["alerts"][0]["kind_text"] == "temperature high"

            r = (await http.get("/api/v1/readings", params={"sensor": "s1", "quantity": "temperature",
                                                             "start": T0 + 60, "end": T0 + 181})).json()
            assert [x["ts"] for x in r["readings"]] == [T0 + 60, T0 + 120, T0 + 180]
            iso = (await http.get("/api/v1/readings", params={"start": "2023-11-14T22:14:00Z", "limit": 2})).json()
            assert iso["count"] == 2 and iso["readings"][0]["ts"] >= T0
            bad = await http.get("/api/v1/readings", params={"start": "yesterday"})
            assert bad.status_code == 422 and "start" in bad.text

            alerts = (await http.get("/api/v1/alerts")).json()["alerts"]
            assert [a["state"] for a in alerts] == ["firing"] and alerts[0]["limit"] == 8.0

            health = (await http.get("/healthz")).json()
            assert health["status"] == "ok" and health["journal"]["journal_mode"] == "wal"
            assert health["journal"]["last_id"] == 13 and health["counters"]["readings_stored"] == 13
            assert health["disk_reserve"] == "held"  # made by the first box-health check, at start

            page = await http.get("/")
            assert page.status_code == 200 and 'lang="zh-CN"' in page.text and "/static/app.js" in page.text
            assert (await http.get("/static/app.js")).headers["content-type"].startswith("text/javascript")
            assert (await http.get("/static/../../etc/passwd")).status_code == 404
            texts = (await http.get("/api/v1/messages/en")).json()
            assert texts["page.title"] == "Cold-room monitor" and not any(k.startswith("alert.") for k in texts)
            # the SMS went out through the outbox
            for _ in range(100):
                if d.journal.outbox.find(state="sent"):
                    break
                await asyncio.sleep(0.05)
            assert [o.contact for o in d.journal.outbox.find(state="sent")] == ["zhang"]
    finally:
        await d.stop()


TOKENS = CONFIG.replace(
    "api: {enabled: true, host: 127.0.0.1, port: 0}",
    "api:\n  enabled: true\n  host: 127.0.0.1\n  port: 0\n  tokens:\n"
    "    - {name: zhang, role: staff, token: {env: CC_TEST_STAFF}}\n"
    "    - {name: install, role: installer, token: {value: inst-secret}}\n",
)


@pytest.mark.asyncio
async def test_ack_needs_a_staff_token_and_records_who(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TEST_STAFF", "staff-secret")
    clock = ManualClock(T0)
    d = Daemon(make_config(tmp_path, TOKENS), clock=clock)
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=10) as http:
            for _ in range(12):
                await d.pipeline.emit([Sample("s1", "temperature", 9.5, "C", ts=clock.now())])
                clock.advance(60)
            for _ in range(200):  # rules run right after the journal commit that released emit()
                (a,) = (await http.get("/api/v1/alerts", params={"open": "true"})).json()["alerts"]
                if a["state"] == "firing":
                    break
                await asyncio.sleep(0.02)
            url = f"/api/v1/alerts/{a['id']}/ack"
            r = await http.post(url, json={"comment": "x"})
            assert r.status_code == 401
            r = await http.post(url, json={"comment": "x"}, headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401
            r = await http.post(url, json={"comment": "x"}, headers={"Authorization": "Bearer inst-secret"})
            assert r.status_code == 403 and "installer" in r.text
            r = await http.post(url, json={"comment": "压缩机已重启"}, headers={"Authorization": "Bearer staff-secret"})
            assert r.status_code == 200 and r.json()["state"] == "acknowledged" and r.json()["acked_by"] == "zhang"
            again = await http.post(url, json={}, headers={"Authorization": "Bearer staff-secret"})
            assert again.status_code == 409
            missing = await http.post("/api/v1/alerts/999/ack", json={}, headers={"Authorization": "Bearer staff-secret"})
            assert missing.status_code == 404
            detail = (await http.get(f"/api/v1/alerts/{a['id']}")).json()
            assert [e["state"] for e in detail["events"]] == ["pending", "firing", "acknowledged"]
            assert detail["events"][-1]["who"] == "zhang (web)" and detail["events"][-1]["comment"] == "压缩机已重启"
            assert detail["messages"][0]["contact"] == "zhang" and detail["messages"][0]["kind"] == "alert.temp_high"
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_maintenance_mute_over_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TEST_STAFF", "staff-secret")
    clock = ManualClock(T0)
    d = Daemon(make_config(tmp_path, TOKENS), clock=clock)
    await d.start()
    auth = {"Authorization": "Bearer staff-secret"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=10) as http:
            assert (await http.post("/api/v1/zones/z1/mute", json={"minutes": 60, "reason": "x"})).status_code == 401
            assert (await http.post("/api/v1/zones/nope/mute", json={"minutes": 60, "reason": "x"},
                                    headers=auth)).status_code == 404
            r = await http.post("/api/v1/zones/z1/mute", json={"minutes": 60, "reason": "换压缩机"}, headers=auth)
            assert r.status_code == 200
            mid = r.json()["id"]
            for _ in range(15):
                await d.pipeline.emit([Sample("s1", "temperature", 12.0, "C", ts=clock.now())])
                clock.advance(60)
            await d.pipeline.flush()
            assert d.journal.alerts.find() == []  # nothing raised during maintenance
            z = (await http.get("/api/v1/zones")).json()["zones"][0]
            assert z["muted"] == "换压缩机" and z["state"] == "ok"
            assert [m["who"] for m in (await http.get("/api/v1/mutes")).json()["mutes"]] == ["zhang"]
            assert (await http.delete(f"/api/v1/mutes/{mid}", headers=auth)).status_code == 200
            await d.pipeline.emit([Sample("s1", "temperature", 12.0, "C", ts=clock.now())])
            await d.pipeline.flush()
            for _ in range(100):
                if d.journal.alerts.find():
                    break
                await asyncio.sleep(0.02)
            assert [a.state for a in d.journal.alerts.find()] == ["pending"]  # the delay starts after the mute
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_ids_too_large_for_sqlite_are_422_not_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # found by schemathesis (tests/fuzz/daemon/api): /api/v1/alerts/9223372036854775808 raised OverflowError
    monkeypatch.setenv("CC_TEST_STAFF", "staff-secret")
    d = Daemon(make_config(tmp_path, TOKENS), clock=ManualClock(T0))
    await d.start()
    try:
        auth = {"Authorization": "Bearer staff-secret"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=10) as http:
            huge = 2**63
            assert (await http.get(f"/api/v1/alerts/{huge}")).status_code == 422
            assert (await http.post(f"/api/v1/alerts/{huge}/ack", json={}, headers=auth)).status_code == 422
            assert (await http.delete(f"/api/v1/mutes/{huge}", headers=auth)).status_code == 422
            assert (await http.get(f"/api/v1/alerts/{huge - 1}")).status_code == 404
            for t in ("1e300", "-1e300", "inf", "nan"):  # found by the same run: ms stamps overflowed SQLite
                assert (await http.get("/api/v1/readings", params={"start": t})).status_code == 422, t
            assert (await http.get("/api/v1/readings", params={"end": "9999-12-31T00:00:00"})).status_code == 200
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_lone_surrogate_in_a_body_is_422_not_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # found by the long schemathesis run: pydantic refuses a lone surrogate, but the 422 echoes it and
    # its UTF-8 encoding failed, so the answer became a 500
    monkeypatch.setenv("CC_TEST_STAFF", "staff-secret")
    d = Daemon(make_config(tmp_path, TOKENS), clock=ManualClock(T0))
    await d.start()
    try:
        auth = {"Authorization": "Bearer staff-secret", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=10) as http:
            r = await http.post("/api/v1/zones/z1/mute", content=b'{"minutes": 5, "reason": "a\\ud800b"}', headers=auth)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reason"]
            r = await http.post("/api/v1/alerts/1/ack", content=b'{"comment": "\\udfff"}', headers=auth)
            assert r.status_code == 422
            assert d.journal.mutes.find() == []
    finally:
        await d.stop()
