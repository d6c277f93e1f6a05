"""The zones page shows times on the site's clock (site.timezone), whatever the browser's zone is."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

from daemon.app.runtime import Daemon
from daemon.reports.pdf import find_chromium
from tests.pages.test_chromium import daemon

pytestmark = pytest.mark.peer
__all__ = ["daemon"]


@pytest_asyncio.fixture
async def new_york_page() -> AsyncIterator[Page]:
    """A browser that lives in New York, looking at a cold store in Asia/Shanghai."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield await browser.new_page(viewport={"width": 1000, "height": 1200}, timezone_id="America/New_York")
        finally:
            await browser.close()


@pytest.mark.asyncio
async def test_zones_page_uses_the_site_time_zone(daemon: tuple[Daemon, str], new_york_page: Page) -> None:
    _, base = daemon  # the clock stands at 2025-11-21 01:00 in Shanghai, 2025-11-20 12:00 in New York
    await new_york_page.goto(f"{base}/?lang=zh-CN")
    updated = new_york_page.locator("#updated")
    await updated.filter(has_text="2025").wait_for()
    assert "2025/11/21 01:00" in (await updated.text_content() or "")
    zones = await (await new_york_page.request.get(f"{base}/api/v1/zones")).json()
    assert zones["site"]["timezone"] == "Asia/Shanghai"
