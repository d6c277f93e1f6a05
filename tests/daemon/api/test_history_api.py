"""History, excursions, reports, lots, trace pages and /metrics through a running daemon over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from daemon.app.runtime import Daemon
from daemon.lots.qr import qr_png
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading, Sample
from tests.conftest import MINIMAL, make_config

T0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai
YEAR = 365 * 86400
SILENT = "type: simulated, setpoint: 6.5, failures: [{kind: silent, at: 0}]}"
CONFIG = (
    MINIMAL.replace("storage: {journal: journal.db}", "storage: {journal: journal.db, flush_interval: 0.01, commit_interval: 0.01}")
    .replace("type: simulated, setpoint: 6.5}", SILENT)
    .replace("sensors:\n", "sensors:\n  - {id: s2, zone: z2, " + SILENT + "\n")
    .replace("commodity: mandarin}\n", "commodity: mandarin}\n  - {id: z2, name: 2号库, name_en: Room 2, commodity: mandarin}\n")
    .replace("api: {enabled: false}", """api:
  enabled: true
  host: 127.0.0.1
  port: 0
  public_url: https://trace.example.cn
  tokens:
    - {name: zhang, role: staff, token: {value: staff-secret}}
    - {name: 李经理, role: manager, token: {value: manager-secret}}
    - {name: install, role: installer, token: {value: inst-secret}}
""")
)
STAFF = {"Authorization": "Bearer staff-secret"}
MANAGER = {"Authorization": "Bearer manager-secret"}
INSTALLER = {"Authorization": "Bearer inst-secret"}


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, text: str) -> AsyncIterator[tuple[Daemon, ManualClock, httpx.AsyncClient]]:
    """A daemon of config `text` on a manual clock a year after T0, with an HTTP client on its API."""
    clock = ManualClock(T0 + YEAR)
    d = Daemon(make_config(tmp_path, text), clock=clock)
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=60) as http:
            yield d, clock, http
    finally:
        await d.stop()


@pytest_asyncio.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Daemon, ManualClock, httpx.AsyncClient]]:
    async with serving(tmp_path, CONFIG) as running:
        yield running


def year_of_minutes(d: Daemon) -> None:
    """A year of 1-minute readings for s1, written the fast way: value = day number mod 10."""
    (first,) = d.journal.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 0.0, T0)])
    sid = d.journal.read("SELECT series FROM readings WHERE id = ?", (first.id,))[0][0]
    with d.journal.transaction() as db:
        db.executemany("INSERT INTO readings (ts_ms, series, value) VALUES (?, ?, ?)",
                       ((int((T0 + i * 60) * 1000), sid, float((i // 1440) % 10)) for i in range(1, YEAR // 60)))


async def poll(check, what: str, seconds: float = 10.0):  # type: ignore[no-untyped-def]
    """Await `check()` until it returns something truthy, or fail after a bounded wait."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        got = await check()
        if got:
            return got
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_history_of_a_year_is_downsampled_on_the_server(running) -> None:  # type: ignore[no-untyped-def]
    d, _, http = running
    await asyncio.to_thread(year_of_minutes, d)
    r = await http.get("/api/v1/history", params={"sensor": "s1", "quantity": "temperature", "start": T0,
                                                  "end": T0 + YEAR})
    assert r.status_code == 200
    (s,) = r.json()["series"]
    assert s["step"] == 43200 and s["columns"] == ["ts", "min", "mean", "max", "count"]
    assert 700 <= len(s["rows"]) <= 1000
    first = s["rows"][0]
    assert first[0] == T0 and first[1:] == [0.0, 0.0, 0.0, 720]  # buckets start at local midnight
    day3 = next(row for row in s["rows"] if row[0] == T0 + 3 * 86400 + 43200)
    assert day3[1:4] == [3.0, 3.0, 3.0]
    # a short range comes back raw
    raw = (await http.get("/api/v1/history", params={"sensor": "s1", "start": "2025-11-21T00:00",
                                                     "end": "2025-11-21T06:00"})).json()["series"][0]
    assert raw["step"] == 0 and len(raw["rows"]) == 360 and raw["rows"][0][0] == T0 + 86400
    # CSV export of two days at the default point budget
    c = await http.get("/api/v1/history", params={"sensor": "s1", "start": "2025-11-20", "end": "2025-11-22",
                                                  "format": "csv"})
    assert c.headers["content-type"].startswith("text/csv") and "attachment" in c.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(c.text.lstrip("\ufeff"))))
    assert rows[0] == ["zone", "sensor", "quantity", "step_s", "time_utc", "ts", "min", "mean", "max", "count",
                       "replayed"]
    assert len(rows) - 1 <= 1000 and rows[1][3] == "300" and rows[1][4] == "2025-11-19T16:00:00Z"
    # a zone id from the query string lands in the file name: non-latin-1 must not break the header
    c = await http.get("/api/v1/history", params={"zone": "冷库ğ", "start": "2025-11-20", "end": "2025-11-22",
                                                  "format": "csv"})
    assert c.status_code == 200
    assert c.headers["content-disposition"] == ('attachment; filename="history-___.csv"; '
                                                "filename*=UTF-8''history-%E5%86%B7%E5%BA%93%C4%9F.csv")
    bad = await http.get("/api/v1/history", params={"start": "2025-11-22", "end": "2025-11-20"})
    assert bad.status_code == 422


async def hot_spell(d: Daemon, clock: ManualClock, minutes: int, value: float) -> None:
    for _ in range(minutes):
        await d.pipeline.emit([Sample("s1", "temperature", value, "C", ts=clock.now())])
        clock.advance(60)
    await d.pipeline.flush()


@pytest.mark.asyncio
async def test_excursions_reports_and_roles(running) -> None:  # type: ignore[no-untyped-def]
    d, clock, http = running
    await hot_spell(d, clock, 5, 6.0)
    await hot_spell(d, clock, 15, 9.5)

    async def firing():  # type: ignore[no-untyped-def]
        a = (await http.get("/api/v1/alerts", params={"open": "true", "zone": "z1"})).json()["alerts"]
        return a if a and a[0]["state"] == "firing" else None

    (a,) = await poll(firing, "the alarm to fire")
    assert (await http.post(f"/api/v1/alerts/{a['id']}/ack", json={"comment": "调整温控器"},
                            headers=STAFF)).status_code == 200
    await hot_spell(d, clock, 10, 6.0)
    exc = (await http.get("/api/v1/excursions", params={"zone": "z1", "lang": "en", "product_only": "true"})
           ).json()["excursions"]
    assert [e["kind"] for e in exc] == ["temp_high"] and exc[0]["kind_text"] == "temperature high"
    assert exc[0]["acked_by"] == "zhang" and exc[0]["comment"] == "调整温控器" and exc[0]["told"][0]["contact"] == "zhang"

    url = "/api/v1/reports/compliance"
    q = {"zone": "z1", "period": "day"}
    assert (await http.get(url, params=q)).status_code == 401
    assert (await http.get(url, params=q, headers=STAFF)).status_code == 403
    assert (await http.get(url, params=q, headers=INSTALLER)).status_code == 403
    rep = (await http.get(url, params=q, headers=MANAGER)).json()
    t = rep["temperature"]["zone"]
    assert t["max"] == 9.5 and t["minutes_above"] == 15 and rep["excursion_count"] == 1
    assert rep["acknowledged_count"] == 1 and rep["excursions"][0]["comment"] == "调整温控器"
    c = await http.get(url, params={**q, "format": "csv", "lang": "en"}, headers=MANAGER)
    assert c.status_code == 200 and c.text.startswith("\ufeffCold-chain compliance report")
    h = await http.get(url, params={**q, "format": "html"}, headers=MANAGER)
    assert h.headers["content-type"].startswith("text/html") and "平均动力学温度" in h.text
    assert (await http.get(url, params={"zone": "nope"}, headers=MANAGER)).status_code == 404
    assert (await http.get(url, params={"zone": "z1", "period": "custom", "start": "x", "end": "y"},
                           headers=MANAGER)).status_code == 422

    assert (await http.get("/api/v1/config")).status_code == 401
    assert (await http.get("/api/v1/config", headers=STAFF)).status_code == 403
    for who in (MANAGER, INSTALLER):
        conf = await http.get("/api/v1/config", headers=who)
        assert conf.status_code == 200 and conf.json()["site"]["id"] == "t1"
        assert "staff-secret" not in conf.text and "manager-secret" not in conf.text and "inst-secret" not in conf.text
        assert conf.json()["api"]["tokens"][0] == {"name": "zhang", "role": "staff",
                                                   "token": {"file": None, "env": None, "value": "***"}}

    m = await http.get("/metrics")
    assert m.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = m.text.splitlines()
    assert "coldchain_readings_stored_total 30" in lines
    assert 'coldchain_alarms{state="resolved"} 1' in lines and 'coldchain_alarms{state="firing"} 1' in lines  # z2 silent
    assert any(x.startswith("coldchain_messages_sent_total ") for x in lines)
    assert any(x.startswith('coldchain_reading{sensor="s1",zone="z1",quantity="temperature"} 6') for x in lines)
    assert "# TYPE coldchain_messages_failed_total counter" in lines


@pytest.mark.asyncio
# long: one lot's life through every role, in order; each step needs the state the last one left
async def test_lots_roles_record_trace_and_qr(running) -> None:  # type: ignore[no-untyped-def]
    d, clock, http = running
    body = {"code": "FJ-2025-0001", "commodity": "mandarin", "zone": "z1", "quantity": 1200, "unit": "kg",
            "origin": "奉节县草堂镇合作社"}
    assert (await http.post("/api/v1/lots", json=body)).status_code == 401
    assert (await http.post("/api/v1/lots", json=body, headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await http.post("/api/v1/lots", json=body, headers=INSTALLER)).status_code == 403
    r = await http.post("/api/v1/lots", json=body, headers=STAFF)
    assert r.status_code == 201 and r.json()["zone"] == "z1" and r.json()["created_by"] == "zhang"
    assert (await http.post("/api/v1/lots", json=body, headers=STAFF)).status_code == 409
    assert (await http.post("/api/v1/lots", json={**body, "code": "X2", "zone": "z1"},
                            headers=STAFF)).status_code == 422  # code too short
    assert (await http.post("/api/v1/lots", json={**body, "code": "X-3", "zone": "z9"},
                            headers=STAFF)).status_code == 404
    assert (await http.post("/api/v1/lots", json={**body, "code": "X-4", "commodity": "durian"},
                            headers=STAFF)).status_code == 422

    await hot_spell(d, clock, 60, 6.0)        # an hour in z1 at 6 °C
    await hot_spell(d, clock, 20, 9.0)        # then 20 min too warm

    async def fired():  # type: ignore[no-untyped-def]
        return [a for a in d.journal.alerts.find() if a.state == "firing"]

    await poll(fired, "the z1 alarm")
    code = body["code"]
    assert (await http.post(f"/api/v1/lots/{code}/move", json={"zone": "z2"})).status_code == 401
    assert (await http.post(f"/api/v1/lots/{code}/move", json={"zone": "z2"}, headers=INSTALLER)).status_code == 403
    assert (await http.post(f"/api/v1/lots/{code}/move", json={"zone": "z1"}, headers=MANAGER)).status_code == 409
    mv = await http.post(f"/api/v1/lots/{code}/move", json={"zone": "z2"}, headers=MANAGER)
    assert mv.status_code == 200 and [s["zone"] for s in mv.json()["stays"]] == ["z1", "z2"]
    for _ in range(120):                      # two hours in z2 at 3 °C: below mandarin's 5 °C
        await d.pipeline.emit([Sample("s2", "temperature", 3.0, "C", ts=clock.now())])
        clock.advance(60)
    await d.pipeline.flush()
    assert (await http.post(f"/api/v1/lots/{code}/checkout")).status_code == 401
    assert (await http.post(f"/api/v1/lots/{code}/checkout", headers=INSTALLER)).status_code == 403
    assert (await http.post(f"/api/v1/lots/{code}/checkout", headers=STAFF)).status_code == 200
    assert (await http.post(f"/api/v1/lots/{code}/checkout", headers=STAFF)).status_code == 409
    assert (await http.post("/api/v1/lots/NOPE-1/checkout", headers=STAFF)).status_code == 404

    assert (await http.get(f"/api/v1/lots/{code}")).status_code == 401
    assert (await http.get(f"/api/v1/lots/{code}", headers=INSTALLER)).status_code == 403
    rec = (await http.get(f"/api/v1/lots/{code}", headers=STAFF)).json()
    z1, z2 = rec["stays"]
    assert z1["hours"] == pytest.approx(80 / 60, abs=0.01) and z2["hours"] == 2.0
    assert rec["hours"] == pytest.approx(200 / 60, abs=0.01)
    assert z1["temperature"]["minutes_above"] == 20 and z1["temperature"]["max"] == 9.0
    assert z2["temperature"]["minutes_below"] == 120 and z2["temperature"]["min"] == 3.0
    assert rec["temperature"]["minutes_out"] == 140 and rec["temperature"]["min"] == 3.0
    assert 3.0 < rec["temperature"]["mkt"] < 9.0
    assert [e["kind"] for e in rec["excursions"]] == ["temp_high", "temp_low"]  # device alarms are not listed
    sl = rec["shelf_life"]
    assert sl["estimate"] is True and sl["life_days"] == 14 and sl["used_days"] > 0 and sl["remaining_days"] < 14
    assert rec["checked_out"] is not None and rec["zone"] is None
    lots = (await http.get("/api/v1/lots", params={"in_storage": "false"}, headers=STAFF)).json()["lots"]
    assert [x["code"] for x in lots] == [code]

    assert (await http.get("/api/v1/audit", headers=STAFF)).status_code == 403
    log = (await http.get("/api/v1/audit", params={"target": code}, headers=MANAGER)).json()["entries"]
    assert [(e["action"], e["who"], e["role"]) for e in log] == [
        ("lot.check_out", "zhang", "staff"), ("lot.move", "李经理", "manager"), ("lot.check_in", "zhang", "staff")]
    assert log[1]["detail"] == {"from": "z1", "to": "z2"}

    pub = await http.get(f"/api/v1/trace/{code}")
    assert pub.status_code == 200
    text = json.dumps(pub.json(), ensure_ascii=False)
    for secret in ("zhang", "张师傅", "李经理", "+86", "138", "who_in", "acked_by", "told"):
        assert secret not in text, secret
    assert [e["acknowledged"] for e in pub.json()["excursions"]] == [False, False]
    zh = await http.get(f"/trace/{code}")
    assert zh.status_code == 200 and "冷链追溯" in zh.text and "奉节县草堂镇合作社" in zh.text and "估算" in zh.text
    en = await http.get(f"/trace/{code}", params={"lang": "en"})
    assert "Cold-chain record" in en.text and "Room 2" in en.text and "estimate" in en.text
    for page in (zh.text, en.text):
        assert "zhang" not in page and "张师傅" not in page and "+86" not in page and "<script" not in page
    by_header = await http.get(f"/trace/{code}", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"})
    assert "Cold-chain record" in by_header.text
    by_header = await http.get(f"/trace/{code}", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"})
    assert "冷链追溯" in by_header.text
    missing = await http.get("/trace/NOPE-1")
    assert missing.status_code == 404 and "NOPE-1" in missing.text
    png = await http.get(f"/trace/{code}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert png.content == qr_png(f"https://trace.example.cn/trace/{code}")  # api.public_url, not the LAN address
    assert (await http.get("/trace/NOPE-1/qr.png")).status_code == 404


@pytest.mark.asyncio
async def test_replayed_readings_say_so_in_the_readings_the_history_and_the_export(
        running: tuple[Daemon, ManualClock, httpx.AsyncClient]) -> None:
    d, clock, http = running
    now = clock.now()
    await d.pipeline.emit([Sample("s1", "temperature", 5.0, "C")])  # live, stamped on arrival
    await d.pipeline.emit([Sample("s1", "temperature", v, "C", replayed=True) for v in (5.5, 6.0, 6.5)])
    await d.pipeline.emit([Sample("s1", "temperature", 7.0, "C", ts=now - 30)])  # the device's own time
    got = (await http.get("/api/v1/readings", params={"sensor": "s1", "start": str(now - 60)})).json()["readings"]
    assert [(r["value"], r["time"], r["replayed"]) for r in got] == [
        (7.0, "device", False), (5.0, "arrival", False), (5.5, "arrival", True), (6.0, "arrival", True),
        (6.5, "arrival", True)]
    assert len({r["ts"] for r in got}) == 5  # one burst, one arrival time: still five distinct times
    params = {"sensor": "s1", "quantity": "temperature", "start": str(now - 60), "end": str(now + 60)}
    hist = (await http.get("/api/v1/history", params=params)).json()["series"][0]
    assert hist["replayed"] == [[now + 0.001, now + 0.003, 3]]
    c = await http.get("/api/v1/history", params={**params, "format": "csv"})
    rows = list(csv.reader(io.StringIO(c.text.lstrip("\ufeff"))))
    assert [(r[7], r[-1]) for r in rows[1:]] == [("7.0", "0"), ("5.0", "0"), ("5.5", "1"), ("6.0", "1"), ("6.5", "1")]
    clock.advance(600)  # the report stops at now
    period = {"zone": "z1", "period": "custom", "start": "2026-11-19", "end": "2026-11-20"}  # the clock: 11-20 00:10
    rep = (await http.get("/api/v1/reports/compliance", params=period, headers=MANAGER)).json()
    assert rep.get("replayed_readings") == 3, rep
    for fmt, lang, text in (("html", "zh-CN", "3条读数由消息服务器事后补发"), ("csv", "en", "3 readings in this period")):
        page = await http.get("/api/v1/reports/compliance", params={**period, "format": fmt, "lang": lang}, headers=MANAGER)
        assert text in page.text, fmt


@pytest.mark.asyncio
async def test_history_refuses_times_that_are_not_numbers(running) -> None:  # type: ignore[no-untyped-def]
    _, _, http = running
    for bad in ("nan", "inf", "-inf"):  # float() takes them; they were a 500 (found by the schema fuzz test)
        r = await http.get("/api/v1/history", params={"start": bad})
        assert r.status_code == 422 and "not a time" in r.text
    for bad in ("1e300", "-1e20", "253402300800"):  # no calendar holds them: datetime overflowed (a 500, fuzz found)
        r = await http.get("/api/v1/history", params={"start": bad})
        assert r.status_code == 422 and "not a time" in r.text, bad
