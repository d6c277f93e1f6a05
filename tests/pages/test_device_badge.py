"""The rooms page in headless Chromium shows a sensor's battery and signal (device.js), a controller's defrost,
and a low battery on its sensor while the room's badge stays "ok"."""

from __future__ import annotations

import asyncio

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.model import Sample
from tests.pages.test_chromium import T0, chromium, daemon  # noqa: F401  (the fixture)
from tests.peers import until

pytestmark = pytest.mark.peer


@pytest.mark.asyncio
async def test_battery_and_signal_on_the_room_card(daemon: tuple[Daemon, str]) -> None:  # noqa: F811
    d, base = daemon
    now = T0 + 86400 + 3600
    fut = d.pipeline.submit([Sample("s1", "temperature", 6.0, "C", ts=now), Sample("s1", "battery", 9, "%", ts=now),
                             Sample("s1", "signal", -77, "dBm", ts=now), Sample("s1", "defrost", 1, ts=now)])
    assert fut is not None
    await asyncio.wait_for(fut, 10)
    await until(lambda: [a.kind for a in d.journal.alerts.find()] == ["battery_low"], "the low-battery warning")
    dom = await asyncio.to_thread(chromium, "--virtual-time-budget=4000", "--dump-dom", f"{base}/?lang=zh-CN")
    assert dom.returncode == 0, dom.stderr[-500:]
    assert 'class="device battery-low" data-device="s1">电池电量低 · 电池 9 % · 信号 -77 dBm · 除霜中<' in dom.stdout, \
        dom.stdout[-3000:]
    assert 'class="badge ok"' in dom.stdout  # the room itself is fine
