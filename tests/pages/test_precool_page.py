"""Precooling from the lots page (phone width, Debian Chromium through Playwright): staff start a run for a lot in
the precooling room, see its figures from the journal, and stop it; the page fits a phone."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from daemon.app.runtime import Daemon
from daemon.lots.store import Lots, Who
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from tests.conftest import make_config
from tests.pages.people import add_people, sign_in_here
from tests.pages.test_chromium import ART, T0
from tests.pages.test_lots_phone import CLIPPED, phone

pytestmark = pytest.mark.peer
__all__ = ["phone"]

SILENT = "type: simulated, setpoint: 5, failures: [{kind: silent, at: 0}]"
CONFIG = f"""
site: {{id: t1, name: 测试冷库}}
storage: {{journal: journal.db, flush_interval: 0.01}}
zones:
  - {{id: pre, name: 预冷间, name_en: Precooling room, precool: {{pulp: [pulp1], supply_air: [air1],
     start_on_check_in: false}}}}
sensors:
  - {{id: pulp1, zone: pre, {SILENT}}}
  - {{id: air1, zone: pre, {SILENT}}}
api:
  enabled: true
  host: 127.0.0.1
  port: 0
  tokens:
    - {{name: zhang, role: staff, token: {{value: staff-secret}}}}
"""
NOW = T0 + 40 * 60


@pytest_asyncio.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    d = Daemon(make_config(tmp_path, CONFIG), clock=ManualClock(NOW))
    await d.start()
    try:
        yield d, f"http://127.0.0.1:{d.api_port}"
    finally:
        await d.stop()


def curve(d: Daemon) -> None:
    """40 min of strawberries cooling with a half-cooling time of 20 min, and a lot in the room."""
    k = math.log(2) / 1200
    d.journal.readings.append(
        [Reading("t1", "pre", "pulp1", Quantity.TEMPERATURE, 0.5 + 21.5 * math.exp(-k * i * 60), T0 + i * 60)
         for i in range(41)] + [Reading("t1", "pre", "air1", Quantity.TEMPERATURE, 0.5, T0 + i * 60) for i in range(41)])
    Lots(d.journal, d.cfg).check_in("SB-PAGE-01", "strawberry", "pre", T0, Who("zhang", "staff"))


@pytest.mark.asyncio
async def test_staff_start_and_stop_a_run_from_the_page(daemon: tuple[Daemon, str], phone: Page) -> None:
    lang = "zh-CN"  # the English texts of the same keys: the trace page test (tests/daemon/test_precool_run.py)
    d, base = daemon
    await asyncio.to_thread(curve, d)
    await add_people(d)
    await phone.goto(f"{base}/lots?lang={lang}")
    await sign_in_here(phone, "zhang")  # the lot list needs a sign-in: there and back
    await phone.locator('tr[data-lot="SB-PAGE-01"]').wait_for()
    await phone.select_option("#precool-start [name=zone]", "pre")
    await phone.fill("#precool-start [name=lot]", "SB-PAGE-01")
    await phone.fill("#precool-start [name=at]", "2025-11-20T00:00")  # T0 on the site's clock: when it went in
    await phone.click("#precool-start button")
    row = phone.locator("tr[data-run]")
    await row.wait_for()
    (run,) = await asyncio.to_thread(d.journal.precool.find)
    text = await row.inner_text()
    assert (run.lot, run.how, run.started_by, run.started) == ("SB-PAGE-01", "manual", "zhang", T0)
    assert "20 min" in text  # the half-cooling time, observed
    assert "冷却中" in text
    ART.mkdir(parents=True, exist_ok=True)
    await phone.screenshot(path=str(ART / "precool-390.png"), full_page=True)
    got: dict[str, Any] = await phone.evaluate(CLIPPED)
    assert got["clipped"] == [] and got["scroll"] <= got["vw"], got
    await phone.click(f'button[data-stop="{run.id}"]')
    await row.wait_for(state="detached")
    stopped = await asyncio.to_thread(d.journal.precool.get, run.id)
    assert stopped is not None and stopped.end_reason == "stopped"
