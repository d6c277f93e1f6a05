"""The manager's app (/app) in the Debian Chromium at a phone's 390 px and a desktop's 1366 px: pick a range and
read a value on hover, the period's MKT, compare two rooms; download a PDF report after signing in from the
401 form; acknowledge a room alarm and the box's own alarm with a comment, record a corrective action.
Screenshots and the PDFs go to artifacts/pages/ (gitignored).

Sign-in: the report test signs in with a user name and password (POST /api/v1/session: an HttpOnly session cookie);
the alarm test with a bearer token in the same form, as machines and the older pages do. Both go 401 -> form -> the
same request again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from daemon.alarms.rules import RuleEvent
from daemon.api.passwords import hash_password
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.reports.pdf import find_chromium
from daemon.storage.alerts import NewAlert
from daemon.storage.users import By
from tests.conftest import make_config
from tests.pages.test_chromium import ART, CONFIG, T0, pdf_text

pytestmark = [pytest.mark.peer, pytest.mark.asyncio(loop_scope="module")]
NOW = T0 + 86400 + 3600  # 2025-11-21 01:00 at the site
TWO_ROOMS = CONFIG.replace("  - {id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}\n",
                           "  - {id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}\n"
                           "  - {id: z2, name: 2号库, name_en: Room 2, commodity: mandarin}\n").replace(
    "sensors:\n", "sensors:\n  - {id: s2, zone: z2, type: simulated, setpoint: 3.0, failures: [{kind: silent, at: 0}]}\n")
WIDTHS = (390, 1366)


def readings(d: Daemon) -> None:
    """The USP worked example in z1 (23 h at 5 °C, then 1 h at 25 °C, MKT 7.76 °C), 88 %RH; z2 steady at 3 °C."""
    rows = []
    for i in range(24 * 60):
        ts = T0 + i * 60
        rows += [Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 5.0 if i < 23 * 60 else 25.0, ts),
                 Reading("t1", "z1", "s1", Quantity.HUMIDITY, 88.0, ts),
                 Reading("t1", "z2", "s2", Quantity.TEMPERATURE, 3.0, ts)]
    d.journal.readings.append(rows)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daemon(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Daemon, str]]:
    d = Daemon(make_config(tmp_path_factory.mktemp("webapp"), TWO_ROOMS), clock=ManualClock(NOW))
    await d.start()
    await asyncio.to_thread(readings, d)
    await asyncio.to_thread(d.journal.users.add, "li", "manager", hash_password("冷库 password 2025"), NOW,
                            By("test", "installer"))
    try:
        yield d, f"http://127.0.0.1:{d.api_port}"
    finally:
        await d.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            await b.close()


@pytest_asyncio.fixture(loop_scope="module", params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    width: int = request.param
    ctx = await browser.new_context(viewport={"width": width, "height": 900 if width > 400 else 844},
                                    accept_downloads=True, timezone_id="Europe/Berlin")  # not the site's zone
    try:
        yield await ctx.new_page()
    finally:
        await ctx.close()


def shot_path(page: Page, name: str) -> str:
    ART.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    return str(ART / f"webapp-{width}-{name}.png")


async def hover_value(page: Page, fraction: float) -> str:
    """Move the pointer to `fraction` of the temperature chart's time axis; the legend's first room value."""
    over = page.locator("#chart-temperature .u-over")
    box = await over.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
    return await page.locator("#chart-temperature .u-legend .u-series").nth(1).locator(".u-value").inner_text()


async def test_history_range_hover_stats_and_compare(daemon: tuple[Daemon, str], page: Page) -> None:
    _, base = daemon
    await page.goto(f"{base}/app?lang=zh-CN#/history?zone=z1")
    await page.locator("#chart-temperature .u-over").wait_for()
    await page.locator('tr[data-stats="z1"]').first.wait_for()  # the statistics fill in after the charts
    # the last 24 h (01:00 .. 01:00): 25 °C from 23:00 to 24:00 of the 20th, 5 °C before
    assert await hover_value(page, (23.5 - 1) / 24) == "25.0 °C"
    assert await hover_value(page, 0.5) == "5.0 °C"
    assert await page.locator("#chart-humidity .u-over").count() == 1
    limits = await page.locator("#chart-temperature canvas").count()
    assert limits == 1
    await page.screenshot(path=shot_path(page, "history-24h"), full_page=True)
    # a custom range: the calendar day of the USP example, whose MKT is 7.76 °C
    await page.locator('[data-range="custom"]').click()
    await page.locator("input[name=from]").fill("2025-11-20T00:00")
    await page.locator("input[name=to]").fill("2025-11-21T00:00")
    await page.locator("[data-apply]").click()
    row = page.locator('tr[data-stats="z1"][data-q="temperature"]')
    await row.locator("td.mkt").filter(has_text="7.76").wait_for()
    assert await row.locator("td.min").inner_text() == "5.0"
    assert await row.locator("td.max").inner_text() == "25.0"
    assert await page.locator('tr[data-stats="z1"][data-q="humidity"] td.mean').inner_text() == "88.0"
    # compare with room 2: a second line in the legend and its own statistics
    await page.locator("select[name=compare]").select_option("z2")
    await page.locator('tr[data-stats="z2"][data-q="temperature"] td.max').filter(has_text="3.0").wait_for()
    assert "2号库" in await page.locator("#chart-temperature .u-legend").inner_text()
    assert await page.locator("#chart-temperature .u-legend .u-series").count() == 3  # time, z1/s1, z2/s2
    await page.screenshot(path=shot_path(page, "history-compare"), full_page=True)
    # the 7-day range still draws (the data only covers one day of it)
    await page.locator('[data-range="7d"]').click()
    await page.locator("#drawn").wait_for()
    assert "7d" in page.url


async def test_report_pdf_after_signing_in(daemon: tuple[Daemon, str], page: Page, tmp_path: Path) -> None:
    _, base = daemon
    await page.goto(f"{base}/app?lang=en#/reports")
    await page.locator("select[name=period]").select_option("day")
    await page.locator("input[name=date]").fill("2025-11-20")
    await page.locator('[data-download="pdf"]').click()
    await page.locator("#signin[open]").wait_for()  # reports are the manager's: 401 opens the sign-in form
    await page.screenshot(path=shot_path(page, "signin"), full_page=True)
    # a person signs in with a password (POST /api/v1/session: cookie + CSRF); the alarm test below uses a token
    await page.locator("#signin input[name=password]").fill("wrong password")
    await page.locator("#signin input[name=username]").fill("li")
    await page.locator("#signin button[type=submit]").click()
    await page.locator("#signin-error:not(:empty)").wait_for()
    assert await page.locator("#signin[open]").count() == 1  # a wrong password keeps the form open
    await page.locator("#signin input[name=password]").fill("冷库 password 2025")
    async with page.expect_download() as info:
        await page.locator("#signin button[type=submit]").click()
    assert any(c["name"] == "cc_session" and c["httpOnly"] for c in await page.context.cookies())
    download = await info.value
    assert download.suggested_filename == "report-z1-20251120.pdf"
    out = tmp_path / "report.pdf"
    await download.save_as(out)
    text = await asyncio.to_thread(pdf_text, out)
    assert "Cold-chain compliance report" in text and "7.76 °C" in text
    ART.mkdir(parents=True, exist_ok=True)
    out.replace(ART / f"webapp-{page.viewport_size['width'] if page.viewport_size else 0}-report.pdf")
    async with page.expect_download() as info:
        await page.locator('[data-download="csv"]').click()  # signed in now: no form
    assert (await info.value).suggested_filename == "report-z1-20251120.csv"


def _fire(d: Daemon) -> tuple[int, int]:
    """A room alarm firing now and the box's clock alarm (as the daemon's own check raises it)."""
    def ev(action: str, ts: float) -> RuleEvent:
        return RuleEvent(action, "z1/s1/temp_high", "z1", "s1", "temp_high", "warning",  # type: ignore[arg-type]
                         ts, NOW - 1200, 9.5, 8.0, 9.5)

    d.alerts.apply([ev("pending", NOW - 1200), ev("fire", NOW - 600)])
    d.alerts.apply(d.rules.box("clock", True, NOW - 300, "box.clock"))
    rows = d.journal.alerts.find(open_only=True, limit=10)
    return (next(a.id for a in rows if a.zone == "z1"), next(a.id for a in rows if a.zone == "_site"))


def _clear(d: Daemon) -> None:
    d.alerts.apply([RuleEvent("clear", "z1/s1/temp_high", "z1", "s1", "temp_high", "warning", NOW - 60, NOW - 1200, 7.0)])
    d.alerts.apply(d.rules.box("clock", False, NOW - 30, "box.clock"))


async def ack(page: Page, alarm: int, comment: str) -> None:
    await page.goto(f"{page.url.split('#')[0]}#/alarm/{alarm}")
    await page.locator("#ack-form input[name=comment]").fill(comment)
    await page.locator(f'[data-ack="{alarm}"]').click()


def _many(d: Daemon) -> list[int]:
    """60 resolved alarms in room 2 (once per module: the page fixture runs each test at two widths), one in
    three temperature low, the rest humidity high; their ids newest first."""
    mine = [a for a in d.journal.alerts.find(zone="z2", limit=1000) if a.key.startswith("z2/many/")]
    if not mine:
        with d.journal.transaction() as tx:
            for i in range(60):
                kind = "temp_low" if i % 3 == 0 else "rh_high"
                aid = d.journal.alerts.insert(tx, NewAlert(f"z2/many/{i}", "z2", "s2", kind, "warning",
                                                           NOW - 86400 + i * 600, 1.0, 2.0, 1.0, None), "pending")
                d.journal.alerts.fire(tx, aid, NOW - 86400 + i * 600 + 300, 1.0, 1.0, None, None)
                d.journal.alerts.resolve(tx, aid, NOW - 86400 + i * 600 + 400, None, 3.0)
        mine = [a for a in d.journal.alerts.find(zone="z2", limit=1000) if a.key.startswith("z2/many/")]
    return [a.id for a in mine]


async def listed(page: Page) -> list[int]:
    return [int(x or 0) for x in await page.locator("#alarm-list li").evaluate_all(
        "(li) => li.map((e) => e.dataset.alarm)")]


async def test_alarm_list_pages_and_filters_on_the_server(daemon: tuple[Daemon, str], page: Page) -> None:
    d, base = daemon
    many = await asyncio.to_thread(_many, d)
    await page.goto(f"{base}/app?lang=zh-CN#/alarms?zone=z2")
    await page.locator("#alarm-list li").first.wait_for()
    assert await listed(page) == many[:50]  # the first page, newest first
    await page.locator("#alarm-more").click()
    await page.locator("#alarm-more").wait_for(state="hidden")  # the last page came
    assert await listed(page) == many  # every row once, none missing
    rows = {a.id: a for a in await asyncio.to_thread(d.journal.alerts.find, zone="z2", limit=1000)}
    low = [i for i in many if rows[i].kind == "temp_low"]
    async with page.expect_request(lambda r: "kind=temp_low" in r.url and "zone=z2" in r.url):
        await page.locator("select[name=kind]").select_option("temp_low")
    await page.locator(f'#alarm-list li[data-alarm="{many[1]}"]').wait_for(state="detached")  # humidity: gone
    assert await listed(page) == low
    assert all("温度过低" in x for x in await page.locator("#alarm-list li").all_inner_texts())
    assert await page.locator("#alarm-more").is_hidden()  # 20 rows: one page
    kinds = await page.locator("select[name=kind] option").evaluate_all("(o) => o.map((e) => e.value)")
    assert {"", "temp_low", "rh_high"} <= set(kinds)  # the kinds of the room, not only the one chosen


async def test_alarms_ack_with_comment_and_corrective_action(daemon: tuple[Daemon, str], page: Page) -> None:
    d, base = daemon
    room, box = await asyncio.to_thread(_fire, d)
    try:
        await page.goto(f"{base}/app?lang=zh-CN#/alarms")
        await page.locator("#banner:not([hidden])").wait_for()  # both not acknowledged
        assert int(await page.locator("#banner").get_attribute("data-count") or 0) >= 2
        assert await page.locator(f'li[data-alarm="{room}"]').count() == 1
        async with page.expect_request(lambda r: "/api/v1/alerts?" in r.url and "zone=_site" in r.url) as asked:
            await page.locator("select[name=zone]").select_option("_site")  # the server filters, not the page
        assert "fired=true" in (await asked.value).url
        await page.locator(f'#alarm-list li[data-alarm="{box}"]').wait_for()
        # the box's alarm was already listed: wait for the filter's new list, where the room's alarm is gone
        await page.locator(f'#alarm-list li[data-alarm="{room}"]').wait_for(state="detached")
        texts = await page.locator("#alarm-list li").all_inner_texts()
        assert texts and all("本机" in x for x in texts)  # only the box's alarms (this run's and earlier ones)
        await page.screenshot(path=shot_path(page, "alarms-list"), full_page=True)
        # the room alarm: acknowledge with a comment (401 -> the form -> staff token -> the same request again);
        # a session's CSRF cookie (as the session back end sets it) goes back as the header on every write
        await page.context.add_cookies([{"name": "cc_csrf", "value": "csrf-1234", "url": base}])
        await ack(page, room, "门没关好，已关门")
        await page.locator("#signin[open]").wait_for()
        await page.locator("#signin input[name=token]").fill("staff-secret")
        async with page.expect_request(lambda r: r.url.endswith(f"/alerts/{room}/ack?lang=zh-CN")) as sent:
            await page.locator("#signin button[type=submit]").click()
        retried = await sent.value
        assert retried.headers.get("x-csrf-token") == "csrf-1234"
        assert retried.headers.get("authorization") == "Bearer staff-secret"
        await page.locator("#audit li").filter(has_text="门没关好，已关门").wait_for()
        assert "zhang" in await page.locator("#audit").inner_text()
        assert await page.locator("#messages li").count() >= 1  # the SMS the alarm sent
        # a corrective action from the same page
        await page.locator("#action-form select[name=kind]").select_option("moved")
        await page.locator("#action-form input[name=text]").fill("移到2号库")
        await page.locator(f'[data-action="{room}"]').click()
        await page.locator("#actions li").filter(has_text="移到2号库").wait_for()
        await page.screenshot(path=shot_path(page, "alarm-detail"), full_page=True)
        row = await asyncio.to_thread(d.journal.alerts.get, room)
        assert row is not None and row.state == "acknowledged" and row.acked_by == "zhang"
        actions = await asyncio.to_thread(d.journal.alerts.actions, room)
        assert [(x.kind, x.text, x.who) for x in actions] == [("moved", "移到2号库", "zhang")]
        # the box's own alarm: the same flow
        await ack(page, box, "已手动对时")
        await page.locator("#audit li").filter(has_text="已手动对时").wait_for()
        boxrow = await asyncio.to_thread(d.journal.alerts.get, box)
        assert boxrow is not None and boxrow.state == "acknowledged" and boxrow.acked_by == "zhang"
        await page.goto(f"{base}/app?lang=zh-CN#/alarms?state=acknowledged")
        await page.locator(f'li[data-alarm="{box}"]').wait_for()
        assert await page.locator("#banner").is_hidden()  # nothing left unacknowledged
    finally:
        await asyncio.to_thread(_clear, d)
