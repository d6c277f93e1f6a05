"""Transfers from the lots page in headless Chromium (staff): receive from a site, split, merge, ship, and a
logger's CSV attached to the shipped lot; a bad file's line shows in the page. Zh-CN texts come from data."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

from daemon.app.runtime import Daemon
from daemon.lots.store import Lots
from tests.pages.people import add_people, sign_in
from tests.pages.test_chromium import daemon
from tests.pages.test_lots_phone import phone

pytestmark = pytest.mark.peer
__all__ = ["daemon", "phone"]


async def submit(page: Page, form: str, **fields: str) -> None:
    for name, value in fields.items():
        await page.fill(f"#{form} [name={name}]", value)
    await page.click(f"#{form} button[type=submit]")


@pytest.mark.asyncio
async def test_transfers_from_the_page(daemon: tuple[Daemon, str], phone: Page, tmp_path: Path) -> None:
    d, base = daemon
    await add_people(d)
    await sign_in(phone, base, "zhang", "/lots?lang=zh-CN")
    assert await phone.locator("#transfers h2").inner_text() == "跨站调运"
    await phone.fill("#checkin [name=code]", "PG-1")
    await phone.fill("#checkin [name=source]", "fengjie-01")
    await phone.fill("#checkin [name=quantity]", "900")
    await phone.click("#checkin button[type=submit]")
    await phone.locator('tr[data-lot="PG-1"]').wait_for()
    await submit(phone, "split", code="PG-1", children="PG-2:400，PG-3:500")
    await phone.locator('tr[data-lot="PG-3"]').wait_for()
    await submit(phone, "merge", codes="PG-2, PG-3", code="PG-4")
    await phone.locator('tr[data-lot="PG-4"]').wait_for()
    await submit(phone, "ship", code="PG-4", destination="wanzhou-02")
    await phone.locator('tr[data-lot="PG-4"]').wait_for(state="detached")
    bad = tmp_path / "truck.csv"
    bad.write_text("time,temperature_c\n2026-11-20T01:00,4\n2026-11-20T01:10,hot\n", encoding="utf-8")
    await phone.fill("#transit [name=code]", "PG-4")
    await phone.set_input_files("#transit [name=file]", str(bad))
    await phone.click("#transit button[type=submit]")
    err = phone.locator("#transfers-error")
    await err.filter(has_text="truck.csv:3").wait_for()
    good = tmp_path / "good.csv"
    good.write_text("time,temperature_c\n1763600000,4\n1763600600,4.5\n", encoding="utf-8")
    await phone.fill("#transit [name=code]", "PG-4")
    await phone.set_input_files("#transit [name=file]", str(good))
    await phone.click("#transit button[type=submit]")
    await phone.locator("#transfers-done").filter(has_text="2 条读数").wait_for()
    lot = Lots(d.journal, d.cfg).get("PG-4")
    assert lot["destination"] == "wanzhou-02" and lot["parents"] == ["PG-2", "PG-3"]
    assert Lots(d.journal, d.cfg).get("PG-1")["source"] == "fengjie-01"
    assert [e.kind for e in d.journal.lot_events.after(0, 10)] == ["receive", "split", "merge", "ship"]
    assert len(d.journal.lot_events.transit("PG-4")) == 1
