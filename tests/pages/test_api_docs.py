"""`/api/docs` works on a box without internet: the page names no outside host, its assets come from the box,
and Swagger UI renders the API in Chromium with every outside request refused."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Route, async_playwright

from daemon.app.runtime import Daemon
from daemon.reports.pdf import find_chromium
from tests.pages.test_chromium import daemon

pytestmark = pytest.mark.peer
__all__ = ["daemon"]


@pytest.mark.asyncio
async def test_docs_page_names_no_outside_host_and_its_assets_are_served(daemon: tuple[Daemon, str]) -> None:
    _, base = daemon
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        page = (await http.get("/api/docs")).text
        assert re.findall(r"https?://", page) == [], page
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
        assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
        for a in assets:
            r = await http.get(a)
            assert r.status_code == 200 and len(r.content) > 1000, a
        assert (await http.get("/api/docs/assets/../../etc/passwd")).status_code == 404


@pytest.mark.asyncio
async def test_docs_render_in_chromium_with_the_internet_cut_off(daemon: tuple[Daemon, str]) -> None:
    _, base = daemon
    outside: list[str] = []

    async def only_the_box(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page()
            await page.route("**/*", only_the_box)
            await page.goto(f"{base}/api/docs")
            title = page.locator(".swagger-ui .info .title")
            await title.wait_for()
            assert "coldchain-monitor" in (await title.inner_text())
            await page.locator(".opblock-summary-path", has_text="/api/v1/alerts/{alert_id}/close").first.wait_for()
        finally:
            await browser.close()
    assert outside == []
