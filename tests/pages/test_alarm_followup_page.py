"""The HACCP follow-up on the rooms page, in Chromium: the history shows a closed alarm with its corrective action;
staff, signed in, record an action by tapping; a manager closes an alarm that is back in range."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

from daemon.alarms.rules import RuleEvent
from daemon.app.runtime import Daemon
from daemon.reports.pdf import find_chromium
from tests.pages.people import add_people, sign_in
from tests.pages.test_chromium import ART, T0, daemon

pytestmark = pytest.mark.peer
__all__ = ["daemon"]


@pytest_asyncio.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield await browser.new_page(viewport={"width": 390, "height": 1200})
        finally:
            await browser.close()


def _past_alarm(d: Daemon) -> int:
    """An alarm of earlier today, acknowledged and back in range: it waits for its corrective action."""
    def ev(action: str, minute: int, value: float) -> RuleEvent:
        return RuleEvent(action, "z1/s1/temp_high", "z1", "s1", "temp_high", "warning",  # type: ignore[arg-type]
                         T0 + 86400 + minute * 60, T0 + 86400, value, 8.0, value)

    d.alerts.apply([ev("pending", 0, 9.0), ev("fire", 10, 9.0)])
    aid = d.journal.alerts.find(limit=1)[0].id
    d.alerts.acknowledge(aid, "zhang", "门没关好，已关门")
    d.alerts.apply([ev("clear", 40, 7.0)])
    return aid


@pytest.mark.asyncio
async def test_corrective_action_and_close_from_the_page(daemon: tuple[Daemon, str], page: Page) -> None:
    d, base = daemon
    aid = await asyncio.to_thread(_past_alarm, d)
    await add_people(d)
    await sign_in(page, base, "zhang", "/?lang=zh-CN")  # staff, by the sign-in page
    item = page.locator(f'li[data-history="{aid}"]')
    await item.wait_for()
    assert "门没关好，已关门" in await item.inner_text()
    await item.locator("select[name=kind]").select_option("moved")
    await item.locator("input[name=text]").fill("移到2号库")
    await item.locator(f'[data-action="{aid}"]').click()
    await item.locator(f'[data-close="{aid}"]').wait_for()
    assert "纠正措施: 已移库: 移到2号库 (zhang" in await item.inner_text()
    await item.locator(f'[data-close="{aid}"]').click()  # staff may not close
    await page.locator("#history-error").filter(has_text="403").wait_for()
    await sign_in(page, base, "li", "/?lang=zh-CN")  # the manager, on the same browser
    item = page.locator(f'li[data-history="{aid}"]')
    await item.locator(f'[data-close="{aid}"]').click()
    await page.locator(f'li.closed[data-history="{aid}"]').wait_for()
    ART.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ART / "zones-history-closed.png"), full_page=True)
    row = await asyncio.to_thread(d.journal.alerts.get, aid)
    assert row is not None and row.closed_by == "li"
    assert "已关闭: li" in await page.locator(f'li[data-history="{aid}"]').inner_text()
