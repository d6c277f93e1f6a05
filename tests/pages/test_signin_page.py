"""The sign-in page in headless Chromium on a phone (390 px): a closed box sends the browser to /login, a wrong
password says so in the page's language, the right one lands back on the page asked for, signed in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import async_playwright

from daemon.api.passwords import hash_password
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.reports.pdf import find_chromium
from daemon.storage.users import By
from tests.conftest import make_config
from tests.pages.test_chromium import ART, CONFIG, T0
from tests.pages.test_lots_phone import CLIPPED

pytestmark = pytest.mark.peer
CLOSED = CONFIG.replace("  tokens:\n", "  sign_in: {reads_need_sign_in: true}\n  tokens:\n")


@pytest_asyncio.fixture
async def closed_box(tmp_path: Path) -> AsyncIterator[str]:
    d = Daemon(make_config(tmp_path, CLOSED), clock=ManualClock(T0))
    await asyncio.to_thread(d.journal.users.add, "王经理", "manager", hash_password("冷库 password"), T0,
                            By("test", "installer"))
    await d.start()
    try:
        yield f"http://127.0.0.1:{d.api_port}"
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_sign_in_page_on_a_phone(closed_box: str) -> None:
    base = closed_box
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="en-US")
            await page.goto(f"{base}/lots")
            assert page.url == f"{base}/login?next=%2Flots"
            assert await page.locator("h1").inner_text() == "Cold-room monitor sign-in"
            got: dict[str, Any] = await page.evaluate(CLIPPED)
            assert got["clipped"] == [] and got["scroll"] <= got["vw"], got

            await page.fill("#username", "王经理")
            await page.fill("#password", "not it at all")
            await page.click("#submit")
            await page.locator("#error", has_text="Wrong user name or password").wait_for()
            ART.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ART / "signin-390-en-wrong.png"), full_page=True)

            await page.fill("#password", "冷库 password")
            await page.click("#submit")
            await page.wait_for_url(f"{base}/lots")
            cookies = {c["name"]: c for c in await page.context.cookies()}
            assert cookies["cc_session"]["httpOnly"] and cookies["cc_session"]["sameSite"] == "Strict"
            assert not cookies["cc_csrf"]["httpOnly"]
            assert "cc_session" not in await page.evaluate("document.cookie")  # scripts cannot read the session
            who = await page.evaluate("fetch('/api/v1/session', {credentials: 'same-origin'}).then(r => r.json())")
            assert who["user"] == "王经理" and who["role"] == "manager"

            await page.goto(f"{base}/login?lang=zh-CN&next=//evil.example/")
            await page.screenshot(path=str(ART / "signin-390-zh.png"), full_page=True)
            assert await page.locator("#submit").inner_text() == "登录"
            await page.fill("#username", "王经理")
            await page.fill("#password", "冷库 password")
            await page.click("#submit")
            await page.wait_for_url(f"{base}/")  # a `next` off this box is ignored
        finally:
            await browser.close()
