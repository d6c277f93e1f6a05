"""`coldchain demo` shows readings, the compressor failure alarm with its SMS, and the page."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def test_demo_raises_compressor_alarm_and_serves_page(tmp_path: Path) -> None:
    """Under the systemd unit's Python settings (-OO: no asserts, no docstrings), as the box runs the daemon."""
    cmd = [sys.executable, "-m", "daemon", "demo", "--port", "0", "--speed", "120", "--duration", "90",
           "--data-dir", str(tmp_path)]
    unit = {"PYTHONOPTIMIZE": "2", "MALLOC_ARENA_MAX": "2"}  # deploy/systemd/coldchain.service (test_install checks it)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **unit}, cwd=tmp_path)
    lines: list[str] = []
    assert p.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 80
        url = None
        # both SMS: the manager's (English) is printed a moment after the staff's, by the same dispatch
        while time.monotonic() < deadline and not (any("【冷库告警】" in ln and "2号库" in ln for ln in lines)
                                                   and any("SMS to li <" in ln for ln in lines)):
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


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Demo:
    """`coldchain demo` in a subprocess; `url` once its page is up, `lines` what it printed."""

    def __init__(self, tmp_path: Path, duration: int = 120) -> None:
        cmd = [sys.executable, "-m", "daemon", "demo", "--port", "0", "--speed", "60", "--duration", str(duration),
               "--data-dir", str(tmp_path)]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.p.stdout.readline, "")),  # type: ignore[union-attr]
                         daemon=True).start()

    def wait_for(self, pattern: str, seconds: float = 80) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for ln in list(self.lines):
                if m := re.search(pattern, ln):
                    return m
            assert self.p.poll() is None, "demo exited early: " + self.p.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.1)
        raise AssertionError(f"demo never printed {pattern!r}: {''.join(self.lines)}")

    def stop(self) -> int:
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(timeout=20)


def test_demo_has_people_tokens_and_a_handled_alarm_in_its_history(tmp_path: Path) -> None:
    demo = Demo(tmp_path)
    try:
        url = demo.wait_for(r"(http://127\.0\.0\.1:\d+/)").group(1)
        staff, manager = demo.wait_for(r"(demo-staff).*(demo-manager)").groups()
        alerts = httpx.get(url + "api/v1/alerts", timeout=5).json()["alerts"]
        past = next(a for a in alerts if a["closed"] is not None)
        assert past["zone"] == "kiwi" and past["closed_by"] == "li" and past["acked_by"] == "zhang"
        detail = httpx.get(url + f"api/v1/alerts/{past['id']}", timeout=5).json()
        assert [x["kind"] for x in detail["actions"]] == ["kept_after_check"]
        assert [e["state"] for e in detail["events"]][-3:] == ["resolved", "corrective_action", "closed"]
        assert not any(f"ACK {past['id']}确认" in ln for ln in demo.lines)  # the past's SMS are not sent again
        demo.wait_for(r"告警 #\d+ mandarin")
        firing = next(a for a in httpx.get(url + "api/v1/alerts", params={"open": "true"}, timeout=5).json()["alerts"]
                      if a["zone"] == "mandarin")
        ack = httpx.post(url + f"api/v1/alerts/{firing['id']}/ack", json={"comment": "压缩机报修"}, timeout=5,
                         headers={"Authorization": f"Bearer {staff}"})
        assert ack.status_code == 200, ack.text
        with httpx.Client(base_url=url, timeout=5) as person:  # the pages' way: zhang signs in, the word printed
            signed = person.post("api/v1/session", json={"username": "zhang", "password": staff})
            assert signed.status_code == 200 and signed.json()["role"] == "staff", signed.text
            lot = person.post("api/v1/lots", json={"code": "DEMO-0001", "commodity": "kiwifruit", "zone": "kiwi"},
                              headers={"X-CSRF-Token": signed.json()["csrf"]})
        assert lot.status_code == 201, lot.text
        around = {"start": iso(past["started"] - 3600), "end": iso(past["started"] + 6 * 3600)}  # any time of day
        report = httpx.get(url + "api/v1/reports/compliance", params={"zone": "kiwi", "format": "json",
                                                                      "period": "custom", **around},
                           headers={"Authorization": f"Bearer {manager}"}, timeout=30)
        assert report.status_code == 200 and report.json()["excursions"][0]["closed_by"] == "li"
    finally:
        rc = demo.stop()
    assert rc == 0, demo.p.stderr.read()  # type: ignore[union-attr]
