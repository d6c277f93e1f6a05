"""The pages in headless Chromium (Debian `chromium`): zones page, trace page, report PDF.

Screenshots and PDFs are kept under artifacts/pages/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

from daemon.app.cli import main
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading, Sample
from daemon.reports.pdf import FLAGS, find_chromium
from daemon.storage.alerts import AlertRow
from tests.conftest import MINIMAL, make_config
from tests.pages.people import add_people, sign_in_here
from tests.peers import until

pytestmark = pytest.mark.peer
ART = Path(__file__).resolve().parents[2] / "artifacts" / "pages"
T0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai
CONFIG = MINIMAL.replace("api: {enabled: false}", """api:
  enabled: true
  host: 127.0.0.1
  port: 0
  tokens:
    - {name: zhang, role: staff, token: {value: staff-secret}}
    - {name: li, role: manager, token: {value: manager-secret}}
""").replace("type: simulated, setpoint: 6.5}", "type: simulated, setpoint: 6.5, failures: [{kind: silent, at: 0}]}"
          ).replace("storage: {journal: journal.db}", "storage: {journal: journal.db, flush_interval: 0.01, commit_interval: 0.01}")


def usp_day(d: Daemon) -> None:
    """The USP worked example as one-minute readings: 23 h at 5 °C, then 1 h at 25 °C."""
    d.journal.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 5.0 if i < 23 * 60 else 25.0, T0 + i * 60)
                      for i in range(24 * 60)])


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="cc-chromium-") as profile:
        return subprocess.run([find_chromium(), *FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1400",
                               *args], capture_output=True, text=True, timeout=timeout, check=False)


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest_asyncio.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    d = Daemon(make_config(tmp_path, CONFIG), clock=ManualClock(T0 + 86400 + 3600))
    await d.start()
    try:
        yield d, f"http://127.0.0.1:{d.api_port}"
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_zones_page_renders_the_rooms(daemon: tuple[Daemon, str]) -> None:
    d, base = daemon
    await asyncio.to_thread(usp_day, d)
    d.live.update(d.journal.readings.latest())
    ART.mkdir(parents=True, exist_ok=True)
    dom = await asyncio.to_thread(chromium, "--virtual-time-budget=4000", "--dump-dom", f"{base}/?lang=zh-CN")
    assert dom.returncode == 0, dom.stderr[-500:]
    assert 'data-zone="z1"' in dom.stdout and "1号库" in dom.stdout and "25.0 °C" in dom.stdout
    shot = ART / "zones.png"
    await asyncio.to_thread(chromium, "--virtual-time-budget=4000", f"--screenshot={shot}", f"{base}/")
    assert shot.is_file() and shot.stat().st_size > 5000


@pytest.mark.asyncio
async def test_trace_page_in_both_languages(daemon: tuple[Daemon, str]) -> None:
    d, base = daemon
    await asyncio.to_thread(usp_day, d)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post("/api/v1/lots", headers={"Authorization": "Bearer staff-secret"},
                            json={"code": "CQ-FJ-0001", "commodity": "mandarin", "zone": "z1", "quantity": 800,
                                  "unit": "kg", "origin": "奉节县"})
        assert r.status_code == 201
    start = d.clock.now()
    d.clock.advance(6 * 3600)  # type: ignore[attr-defined]
    d.journal.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 9.0 if 120 <= i < 150 else 6.5, start + i * 60)
                      for i in range(6 * 60)])
    ART.mkdir(parents=True, exist_ok=True)
    for lang, words in (("zh-CN", ["冷链追溯", "奉节县", "估算", "6.5 / 9.0 °C"]),
                        ("en", ["Cold-chain record", "estimate", "Room 1"])):
        dom = await asyncio.to_thread(chromium, "--dump-dom", f"{base}/trace/CQ-FJ-0001?lang={lang}")
        assert dom.returncode == 0 and all(w in dom.stdout for w in words), dom.stdout[:2000]
        assert "zhang" not in dom.stdout
        shot = ART / f"trace-{lang}.png"
        await asyncio.to_thread(chromium, f"--screenshot={shot}", f"{base}/trace/CQ-FJ-0001?lang={lang}")
        assert shot.is_file() and shot.stat().st_size > 5000


@pytest.mark.asyncio
async def test_report_prints_to_pdf_over_http(daemon: tuple[Daemon, str]) -> None:
    d, base = daemon
    await asyncio.to_thread(usp_day, d)
    async with httpx.AsyncClient(base_url=base, timeout=180) as http:
        r = await http.get("/api/v1/reports/compliance", headers={"Authorization": "Bearer manager-secret"},
                           params={"zone": "z1", "period": "day", "date": "2025-11-20", "format": "pdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and len(r.content) > 10_000
    ART.mkdir(parents=True, exist_ok=True)
    out = ART / "report-z1-20251120.pdf"
    out.write_bytes(r.content)
    text = pdf_text(out)
    assert "冷链合规报告" in text and "7.76 °C" in text  # the USP worked example, printed
    assert "60" in text  # minutes above 8 °C


def test_cli_report_pdf(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL)
    from daemon.storage.journal import Journal

    j = Journal(cfg.storage.journal)
    j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 5.0 if i < 23 * 60 else 25.0, T0 + i * 60)
              for i in range(24 * 60)])
    j.close()
    conf = tmp_path / "config.yaml"
    conf.write_text(MINIMAL, encoding="utf-8")
    out = tmp_path / "r.pdf"
    assert main(["report", "-c", str(conf), "--zone", "z1", "--from", "2025-11-20", "--to", "2025-11-20",
                 "--format", "pdf", "--out", str(out), "--lang", "en"]) == 0
    assert out.stat().st_size > 10_000
    text = pdf_text(out)
    assert "Cold-chain compliance report" in text and "7.76 °C" in text
    ART.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, ART / "report-cli-en.pdf")


@pytest_asyncio.fixture
async def page() -> AsyncIterator[Page]:
    """A Playwright page in the Debian Chromium (Playwright's own browser download is not used)."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield await browser.new_page(viewport={"width": 1000, "height": 1200})
        finally:
            await browser.close()


@pytest.mark.asyncio
async def test_acknowledge_an_alarm_by_clicking_on_the_zones_page(daemon: tuple[Daemon, str], page: Page) -> None:
    """Staff type a comment and tap Acknowledge; not signed in yet, the page sends them to the sign-in and back;
    signed in, the write carries the session's CSRF token and the journal records who."""
    d, base = daemon
    clock: ManualClock = d.clock  # type: ignore[assignment]
    await too_warm(d, clock)
    await add_people(d)
    alarm = await until(lambda: firing(d), "the alarm to fire")
    await page.goto(f"{base}/")
    button = page.locator(f'[data-ack="{alarm.id}"]')
    await button.wait_for()
    await page.locator("svg.chart polyline").first.wait_for(state="attached")  # the last 24 h, range dashed
    assert await page.locator("svg.chart line.limit").count() == 2
    assert await page.locator("#token").count() == 0  # no token box: people sign in
    comment = f'li[data-alert="{alarm.id}"] input[name="comment"]'
    await page.fill(comment, "门没关好，已关门")
    await button.click()  # 401: to the sign-in page
    await sign_in_here(page, "zhang")
    assert page.url == f"{base}/"  # back on the rooms page
    await page.fill(comment, "门没关好，已关门")
    ART.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ART / "zones-before-ack.png"), full_page=True)
    csrf = next(c["value"] for c in await page.context.cookies() if c["name"] == "cc_csrf")
    async with page.expect_request(lambda r: f"/alerts/{alarm.id}/ack" in r.url) as sent:
        await button.click()
    headers = (await sent.value).headers
    assert headers.get("x-csrf-token") == csrf and "authorization" not in headers

    async def acked() -> AlertRow | None:
        row = await asyncio.to_thread(d.journal.alerts.get, alarm.id)
        return row if row is not None and row.state == "acknowledged" else None

    row = await until(acked, "the acknowledgement to reach the journal")
    assert row.acked_by == "zhang"
    events = await asyncio.to_thread(d.journal.alerts.events, alarm.id)
    assert events[-1][2:] == ("zhang (web)", "门没关好，已关门")
    await page.locator(".acked").wait_for()
    await page.screenshot(path=str(ART / "zones-after-ack.png"), full_page=True)


@pytest.mark.asyncio
async def test_acknowledge_signed_out_goes_to_the_sign_in_page(daemon: tuple[Daemon, str], page: Page) -> None:
    d, base = daemon
    clock: ManualClock = d.clock  # type: ignore[assignment]
    await too_warm(d, clock)
    alarm = await until(lambda: firing(d), "the alarm to fire")
    await page.goto(f"{base}/?lang=en")
    await page.locator(f'[data-ack="{alarm.id}"]').click()  # not signed in
    await page.wait_for_url("**/login?**")
    assert page.url == f"{base}/login?next=%2F%3Flang%3Den&lang=en"  # back here after, in the page's language
    assert await page.locator("h1").inner_text() == "Cold-room monitor sign-in"
    assert (await asyncio.to_thread(d.journal.alerts.get, alarm.id)).state == "firing"  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_staff_check_a_lot_in_and_out_on_the_lots_page(daemon: tuple[Daemon, str], page: Page) -> None:
    d, base = daemon
    await add_people(d)
    await page.goto(f"{base}/lots")  # the lots need a sign-in: to the sign-in page, then back
    await sign_in_here(page, "zhang")
    assert page.url == f"{base}/lots"
    await page.locator("#checkin select[name=zone] option").first.wait_for(state="attached")  # rooms loaded
    await page.fill("#checkin input[name=code]", "CQ-FJ-0042")
    assert await page.input_value("#checkin [name=commodity]") == "mandarin"  # the room's commodity
    await page.fill("#checkin input[name=quantity]", "640")
    await page.fill("#checkin input[name=origin]", "奉节县草堂镇")
    await page.click("#checkin button[type=submit]")
    await page.locator('tr[data-lot="CQ-FJ-0042"]').wait_for()
    ART.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ART / "lots.png"), full_page=True)
    lot = await asyncio.to_thread(lambda: d.journal.read("SELECT quantity, origin, created_by FROM lots"))
    assert lot == [(640.0, "奉节县草堂镇", "zhang")]
    await page.click('[data-checkout="CQ-FJ-0042"]')
    await page.locator('tr[data-lot="CQ-FJ-0042"]').wait_for(state="detached")
    actions = await asyncio.to_thread(
        lambda: d.journal.read("SELECT action, who FROM audit_log WHERE action LIKE 'lot.%' ORDER BY id"))
    assert actions == [("lot.check_in", "zhang"), ("lot.check_out", "zhang")]


async def firing(d: Daemon) -> AlertRow | None:
    rows = await asyncio.to_thread(d.journal.alerts.find, open_only=True, zone="z1")
    return next((a for a in rows if a.state == "firing"), None)


async def too_warm(d: Daemon, clock: ManualClock) -> None:
    """18 minutes at 9.5 °C, three readings at a time (never 5 min silent): past mandarin's 8 °C and 10 min delay."""
    for _ in range(6):
        start = clock.now()
        clock.advance(180)
        await d.pipeline.emit([Sample("s1", "temperature", 9.5, "C", ts=start + i * 60) for i in range(3)])


@pytest.mark.asyncio
async def test_upload_state_shows_on_the_zones_page(tmp_path: Path, page: Page) -> None:
    """A dead regional InfluxDB is visible to staff: the footer says the upload is down and what waits."""
    cfg = CONFIG + 'sinks:\n  - {id: county-hub, type: influxdb1, url: "http://127.0.0.1:9", database: cc, timeout: 1}\n'
    d = Daemon(make_config(tmp_path, cfg), clock=ManualClock(T0))
    await d.start()
    try:
        usp_day(d)
        d.forwarders[0].notify([])
        await page.goto(f"http://127.0.0.1:{d.api_port}/?lang=en")
        footer = page.locator("#uplinks")
        await footer.filter(has_text="county-hub: down").wait_for()
        assert "1440 waiting" in (await footer.text_content() or "")
        assert await footer.get_attribute("class") == "offline"
    finally:
        await d.stop()
