"""The lots page on a phone (390 px wide, headless Chromium): nothing cut off, commodity names in the page's
language from the catalog, and a backdated check-in from the page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

from daemon.app.runtime import Daemon
from daemon.lots.store import Who
from daemon.reports.pdf import find_chromium
from tests.pages.people import add_people, sign_in, sign_in_here
from tests.pages.test_chromium import ART, CONFIG, T0, daemon

pytestmark = pytest.mark.peer
__all__ = ["daemon"]


@pytest_asyncio.fixture
async def phone() -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        finally:
            await browser.close()


CLIPPED = """() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  for (const e of document.querySelectorAll("button, input, select, a")) {
    const r = e.getBoundingClientRect();
    if (r.width === 0) continue;
    let clipped = r.left < 0 || r.right > vw + 0.5;
    for (let p = e.parentElement; p && !clipped; p = p.parentElement) {  // hidden by a scrolling or clipping box
      const s = getComputedStyle(p);
      if (s.overflowX !== "visible") {
        const q = p.getBoundingClientRect();
        clipped = r.left < q.left - 0.5 || r.right > q.right + 0.5;
      }
    }
    if (clipped) out.push(`${e.tagName} ${e.textContent || e.name || ""} ${r.left.toFixed(0)}..${r.right.toFixed(0)}`);
  }
  return {clipped: out, scroll: document.documentElement.scrollWidth, vw};
}"""


async def _with_lots(d: Daemon) -> None:
    from daemon.lots.store import Lots

    lots = Lots(d.journal, d.cfg)
    await asyncio.to_thread(lots.check_in, "CQ-KIWI-0001", "kiwifruit", "z1", d.clock.now(), Who("zhang", "staff"),
                            quantity=1200, unit="kg", origin="奉节县草堂镇")
    await asyncio.to_thread(lots.check_in, "CQ-FJ-0042", "mandarin", "z1", d.clock.now(), Who("zhang", "staff"))


@pytest.mark.asyncio
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_lots_page_fits_a_phone_and_names_commodities(daemon: tuple[Daemon, str], phone: Page,
                                                             lang: str) -> None:
    d, base = daemon
    await _with_lots(d)
    await add_people(d)
    await phone.goto(f"{base}/lots?lang={lang}")
    await sign_in_here(phone, "zhang")  # the lot list needs a sign-in: there and back
    row = phone.locator('tr[data-lot="CQ-KIWI-0001"], [data-lot="CQ-KIWI-0001"]').first
    await row.wait_for()
    ART.mkdir(parents=True, exist_ok=True)
    await phone.screenshot(path=str(ART / f"lots-390-{lang}.png"), full_page=True)
    got: dict[str, Any] = await phone.evaluate(CLIPPED)
    assert got["clipped"] == [] and got["scroll"] <= got["vw"], got
    text = await row.inner_text()
    assert ("猕猴桃" if lang == "zh-CN" else "Kiwifruit") in text and "kiwifruit" not in text
    options = await phone.locator("#checkin [name=commodity] option").all_inner_texts()
    assert ("猕猴桃" if lang == "zh-CN" else "Kiwifruit") in " ".join(options)


@pytest.mark.asyncio
async def test_backdated_check_in_from_the_page(daemon: tuple[Daemon, str], phone: Page) -> None:
    d, base = daemon
    await add_people(d)
    await sign_in(phone, base, "zhang", "/lots")
    await phone.locator("#checkin select[name=zone] option").first.wait_for(state="attached")
    await phone.fill("#checkin input[name=code]", "CQ-LATE-0007")
    await phone.fill("#checkin input[name=at]", "2025-11-21T00:15")  # 45 min before the daemon's clock (01:00)
    await phone.click("#checkin button[type=submit]")
    await phone.locator('[data-lot="CQ-LATE-0007"]').first.wait_for()
    stays = await asyncio.to_thread(d.journal.lots.stays, "CQ-LATE-0007")
    assert stays[0][1] == T0 + 86400 + 15 * 60
    assert CONFIG  # the shared config (tokens) of tests/pages/test_chromium.py
