"""The manager's app's own routes: the page, its modules, the npm-built chart library, and the period summary
(the compliance report's statistics, so the history page and the PDF agree)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from daemon.api import pages_app
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.reports.compliance import compliance
from tests.conftest import make_config
from tests.daemon.api.test_api import CONFIG

T0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai


@pytest.mark.asyncio
async def test_app_page_assets_and_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = Daemon(make_config(tmp_path, CONFIG), clock=ManualClock(T0 + 86400 + 3600))
    await d.start()
    try:
        d.journal.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 5.0 if i < 23 * 60 else 25.0,
                                           T0 + i * 60) for i in range(24 * 60)])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=30) as http:
            page = await http.get("/app")
            assert page.status_code == 200 and 'lang="zh-CN"' in page.text and "/static/app/main.js" in page.text
            js = await http.get("/static/app/history.js")
            assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
            for bad in ("../pages.py", "app.html", "nothere.js", "%2e%2e%2fapp.py"):
                assert (await http.get(f"/static/app/{bad}")).status_code == 404, bad
            lib = await http.get("/static/vendor/uPlot.iife.min.js")
            assert lib.status_code == 200 and "uPlot" in lib.text  # `make assets` ran (npm ci)
            texts = (await http.get("/api/v1/messages/en")).json()
            assert texts["app.range_30d"] == "30 days" and texts["action.moved"]

            s = (await http.get("/api/v1/history/summary", params={"zone": "z1", "start": "2025-11-20",
                                                                    "end": "2025-11-21"})).json()
            rep = compliance(d.journal, d.cfg, "z1", T0, T0 + 86400, d.clock.now())
            assert rep.temperature is not None
            assert s["temperature"]["mkt"] == pytest.approx(rep.temperature.zone.mkt, abs=1e-3)
            assert s["temperature"]["mkt"] == pytest.approx(7.76, abs=0.01)  # the USP worked example
            assert (s["temperature"]["min"], s["temperature"]["max"], s["humidity"]) == (5.0, 25.0, None)
            assert (await http.get("/api/v1/history/summary", params={"zone": "nope"})).status_code == 404
            r = await http.get("/api/v1/history/summary", params={"zone": "z1", "start": "2025-11-21",
                                                                   "end": "2025-11-20"})
            assert r.status_code == 422
            # a box installed from a checkout without `make assets`: a 503 that says what to do, not a blank chart
            monkeypatch.setattr(pages_app, "STATIC", tmp_path)
            (tmp_path / "vendor").mkdir()
            miss = await http.get("/static/vendor/uPlot.iife.min.js")
            assert miss.status_code == 503 and "make assets" in miss.json()["detail"]
    finally:
        await d.stop()
