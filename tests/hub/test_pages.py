"""The hub's pages in headless Chromium (Debian `chromium`), served by `python -m hub serve` on a real PostgreSQL.

Screenshots go to artifacts/pages/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import urllib3
from playwright.sync_api import sync_playwright

from hub import store
from hub.contract import parse
from tests.conftest import free_port
from tests.hub.boxes import T0
from tests.hub.test_store import H, msgs
from tests.hub.test_web import ROOT_DIR
from tests.peers import wait_until

pytestmark = pytest.mark.peer
ART = ROOT_DIR / "artifacts" / "pages"


def test_region_and_trace_pages_in_chromium(pg: Any, dsn: str, tmp_path: Path) -> None:
    for topic, body in msgs():
        record = parse(topic, body)
        assert record is not None
        store.apply(pg, record, now_ms=T0 + 7 * H)
    (tmp_path / "read.token").write_text("read-secret\n")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "hub", "--dsn", dsn, "serve", "--port", str(port),
                               "--read-token-file", str(tmp_path / "read.token")], cwd=ROOT_DIR)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib3.request("GET", f"{base}/healthz", retries=False).status == 200, 60, "hub serve up")
        ART.mkdir(parents=True, exist_ok=True)
        chromium = shutil.which("chromium")
        assert chromium, "Debian chromium not installed: run `make system-deps`"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1000, "height": 1200})
            page.goto(f"{base}/?token=read-secret&lang=zh-CN")
            assert page.locator("#centers tr").count() == 3  # header + a + b
            assert "在线" in page.locator("#centers").inner_text()
            assert "zhang" in page.locator("#alarms").inner_text()
            assert "36" in page.locator("#capacity").inner_text()  # 40 t room, 4 t of L2-a in it
            page.screenshot(path=str(ART / "hub-region.png"), full_page=True)
            page.click("#other-lang")  # the staff token goes along
            assert "Uplink lag" in page.locator("#centers").inner_text()
            page.goto(f"{base}/trace/L1?lang=zh-CN")
            assert page.locator("#legs tr").count() == 4  # header + stay, transit, stay
            page.click("#other-lang")
            assert "In transit" in page.locator("#legs").inner_text()
            page.screenshot(path=str(ART / "hub-trace.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(15)


def test_the_vehicle_leg_in_chromium(pg: Any, dsn: str) -> None:
    """The trace page of a lot carried by a vehicle box, as a buyer's phone shows it: the vehicle leg labelled,
    with its figures; the region page's vehicles table (tests/hub/test_vehicle_chain.py builds the messages)."""
    from tests.hub.test_store import apply_all
    from tests.hub.test_vehicle_chain import messages

    apply_all(pg, messages())
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "hub", "--dsn", dsn, "serve", "--port", str(port)], cwd=ROOT_DIR)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib3.request("GET", f"{base}/healthz", retries=False).status == 200, 60, "hub serve up")
        ART.mkdir(parents=True, exist_ok=True)
        chromium = shutil.which("chromium")
        assert chromium, "Debian chromium not installed: run `make system-deps`"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 420, "height": 900})
            page.goto(f"{base}/trace/L1?lang=zh-CN")
            rows = page.locator("#legs tr")
            assert rows.count() == 4  # header + A, the vehicle, B
            vehicle = rows.nth(2).inner_text()
            assert "运输中（冷藏车）" in vehicle and "渝A-12345 冷藏车 · c1 号库" in vehicle and "7.4 °C" in vehicle
            page.screenshot(path=str(ART / "hub-trace-vehicle.png"), full_page=True)
            page.goto(f"{base}/?lang=en")
            assert "渝A-12345 冷藏车" in page.locator("#vehicles").inner_text()
            assert "渝A-12345" not in page.locator("#centers").inner_text() + page.locator("#capacity").inner_text()
            browser.close()
    finally:
        server.terminate()
        server.wait(15)
