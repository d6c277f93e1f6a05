"""Scenario: the manager's history page (/app) in the Debian Chromium, one room with 30 days of 1-minute
temperature and humidity (86,400 readings) in the journal.

- first view: `/app#/history` (the last 24 h) from a cold cache: bytes transferred (Chromium's own count of
  encoded bytes, headers included, from the DevTools protocol) against the 300 KB budget of issue 15;
- the 30-day range: from the click on "30 days" to both charts drawn (two history requests and uPlot's draw),
  against 1 s; uPlot's draw alone; and the click to the period's statistics shown (min / max / mean / MKT
  over every reading, computed by the report code; they fill in after the charts);
- the same 30-day view with the CPU slowed 4 x (DevTools CPU throttling): a rough stand-in for a cheap phone,
  reported, not judged.
The box's side runs on this machine (its 2 cores shared with Chromium), so the click-to-drawn time includes it.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

from bench.common import Result, app_config, check
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.reports.pdf import find_chromium
from daemon.storage import rollups

T0 = 1_763_568_000.0
ON_DRAWN = ("addEventListener('cc-drawn', (e) => { window.__drawn = { ...e.detail, at: performance.now() }; },"
            " { once: true });"
            "addEventListener('cc-stats', () => { window.__stats = performance.now(); }, { once: true });")
CLICK_30D = """() => new Promise((resolve) => {
  const t0 = performance.now();
  let drawn;
  addEventListener('cc-drawn', (e) => { drawn = { ...e.detail, click_ms: performance.now() - t0 }; }, { once: true });
  addEventListener('cc-stats', () => resolve({ ...drawn, stats_ms: performance.now() - t0 }), { once: true });
  document.querySelector('[data-range="30d"]').click();
})"""


def _fill(d: Daemon, days: int) -> int:
    n = days * 24 * 60
    for start in range(0, n, 20_000):
        d.journal.readings.append([r for i in range(start, min(n, start + 20_000)) for r in (
            Reading("bench", "z1", "s1", Quantity.TEMPERATURE, 5.0 + (i % 240) / 60, T0 + 60 * i),
            Reading("bench", "z1", "s1", Quantity.HUMIDITY, 90.0 + (i % 100) / 25, T0 + 60 * i))])
    rollups.catch_up(d.journal)  # a box that has run for a month has its rollup tiers up to date
    return 2 * n


async def _views(base: str, throttle: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
            page = await ctx.new_page()
            cdp = await ctx.new_cdp_session(page)
            await cdp.send("Network.enable")
            await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            if throttle > 1:
                await cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
            sizes: list[float] = []
            cdp.on("Network.loadingFinished", lambda e: sizes.append(float(e["encodedDataLength"])))
            await page.add_init_script(ON_DRAWN)
            await page.goto(f"{base}/app?lang=zh-CN#/history?zone=z1")
            await page.wait_for_function("window.__drawn && window.__stats", timeout=60_000)
            first = await page.evaluate("window.__drawn")
            first_bytes, first_requests = sum(sizes), len(sizes)
            sizes.clear()
            month = await page.evaluate(CLICK_30D)
            await page.wait_for_timeout(200)  # the last loadingFinished events of the view
            return {"first_kb": first_bytes / 1000, "first_requests": first_requests,
                    "first_drawn_ms": first["at"], "month_click_ms": month["click_ms"],
                    "month_draw_ms": month["draw_ms"], "month_points": month["points"],
                    "month_stats_ms": month["stats_ms"],
                    "month_kb": sum(sizes) / 1000}
        finally:
            await browser.close()


async def _run(tmp: Path, days: int, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    doc = {"site": {"id": "bench", "name": "基准"}, "storage": {"journal": str(tmp / "journal.db")},
           "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin"}],
           "sensors": [{"id": "s1", "zone": "z1", "type": "simulated", "setpoint": 6,
                        "failures": [{"kind": "silent", "at": 0}]}],
           "api": {"enabled": True, "host": "127.0.0.1", "port": 0}}
    d = Daemon(app_config(tmp, doc), clock=ManualClock(T0 + days * 86400))
    await d.start()
    try:
        n = await asyncio.to_thread(_fill, d, days)
        base = f"http://127.0.0.1:{d.api_port}"
        runs = [await _views(base, 1.0) for _ in range(repeat)]
        slow = await _views(base, 4.0)
    finally:
        await d.stop()
    return runs, slow, n


def run(tmp: Path, days: int = 30, repeat: int = 3) -> list[Result]:
    tmp.mkdir(parents=True, exist_ok=True)
    runs, slow, n = asyncio.run(_run(tmp, days, repeat))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    raw = {"readings": n, "days": days, "runs": runs, "median": med, "cpu_4x_slower": slow}
    notes = [f"{days} days of 1-minute temperature and humidity; the server buckets to ~1 point per pixel "
             f"({med['month_points']:.0f} points drawn); median of {repeat} cold-cache runs"]
    return [
        Result("webpage", "history page: first view transferred (cold cache)", med["first_kb"], "KB", "<= 300",
               check(med["first_kb"], "<= 300"), raw, notes=notes),
        Result("webpage", f"history page: {days} days of one room, click to drawn", med["month_click_ms"] / 1000, "s",
               "<= 1", check(med["month_click_ms"] / 1000, "<= 1"), {"draw_ms": med["month_draw_ms"],
                                                                    "cpu_4x_slower_click_ms": slow["month_click_ms"]}),
        Result("webpage", f"history page: {days} days, click to min / max / mean / MKT shown",
               med["month_stats_ms"] / 1000, "s", "", None, {"cpu_4x_slower_stats_ms": slow["month_stats_ms"]}),
    ]
