"""Backdated lot changes over HTTP: a local time without offset is the site's; the future is refused."""

from __future__ import annotations

import pytest

from tests.daemon.api.test_history_api import MANAGER, STAFF, T0, YEAR, running

__all__ = ["running"]


@pytest.mark.asyncio
async def test_lot_checked_in_and_out_at_stated_times(running) -> None:  # type: ignore[no-untyped-def]
    _, clock, http = running
    day = "2026-11-20"  # T0 + YEAR is 2026-11-20 00:00 in Asia/Shanghai
    clock.advance(10 * 3600)  # entered at 10:00 (the fixture starts at T0 + YEAR)
    body = {"code": "BD-1", "commodity": "mandarin", "zone": "z1", "at": f"{day}T07:30"}
    r = await http.post("/api/v1/lots", json=body, headers=STAFF)
    assert r.status_code == 201 and r.json()["stays"][0]["start"] == T0 + YEAR + 7.5 * 3600
    future = await http.post("/api/v1/lots/BD-1/move", json={"zone": "z2", "at": f"{day}T11:00"}, headers=STAFF)
    assert future.status_code == 422 and "future" in future.text
    early = await http.post("/api/v1/lots/BD-1/checkout", json={"at": f"{day}T07:00+08:00"}, headers=STAFF)
    assert early.status_code == 409
    out = await http.post("/api/v1/lots/BD-1/checkout", json={"at": f"{day}T01:45:00Z"}, headers=STAFF)  # 09:45
    assert out.status_code == 200 and out.json()["checked_out"] == T0 + YEAR + 9.75 * 3600
    entries = (await http.get("/api/v1/audit", params={"target": "BD-1"}, headers=MANAGER)).json()["entries"]
    assert [(e["action"], e["who"], e["ts"], e["detail"]["at"]) for e in entries] == [
        ("lot.check_out", "zhang", T0 + YEAR + 10 * 3600, T0 + YEAR + 9.75 * 3600),
        ("lot.check_in", "zhang", T0 + YEAR + 10 * 3600, T0 + YEAR + 7.5 * 3600)]
    assert (await http.post("/api/v1/lots", json={**body, "code": "BD-2", "at": None}, headers=STAFF)).status_code == 201
