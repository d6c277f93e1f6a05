"""`coldchain demo` shows readings, the compressor failure alarm with its SMS, and the page."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def test_demo_raises_compressor_alarm_and_serves_page(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "daemon", "demo", "--port", "0", "--speed", "120", "--duration", "90",
           "--data-dir", str(tmp_path)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    lines: list[str] = []
    assert p.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 80
        url = None
        while time.monotonic() < deadline and not any("【冷库告警】" in ln and "2号库" in ln for ln in lines):
            url = url or next((m.group(1) for ln in lines if (m := re.search(r"(http://127\.0\.0\.1:\d+/)", ln))), None)
            time.sleep(0.2)
            assert p.poll() is None, "demo exited early: " + p.stderr.read()  # type: ignore[union-attr]
        out = "".join(lines)
        assert url, out
        assert re.search(r"告警 #\d+ mandarin 温度过高", out), out
        assert "SMS to zhang <+8613800138000>: 【冷库告警】草堂镇冷库2号库温度" in out
        assert "SMS to li <+8613900139000>: [Cold-chain]" in out  # the English-speaking manager
        zones = httpx.get(url + "api/v1/zones", timeout=5).json()["zones"]
        mandarin = next(z for z in zones if z["id"] == "mandarin")
        assert mandarin["state"] == "firing" and mandarin["sensors"][0]["readings"]["temperature"]["value"] > 8.0
        kiwi = next(z for z in zones if z["id"] == "kiwi")
        assert kiwi["state"] in ("ok", "pending")  # door openings do not page anyone
        assert "app.js" in httpx.get(url, timeout=5).text
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=20)
    assert rc == 0, p.stderr.read()  # type: ignore[union-attr]
    assert (tmp_path / "journal.db").exists()
