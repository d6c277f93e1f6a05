"""A crashed driver is restarted with backoff, and the backoff starts over after it ran well."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.app import runtime
from daemon.app.runtime import Daemon
from daemon.ports.sources import SensorDriver
from tests.conftest import make_config


class Crashy(SensorDriver):
    """Crashes at once twice, then after running a while, then at once again; then stays up."""

    def __init__(self, d: Daemon) -> None:
        super().__init__(d.cfg.sensors, d.drivers[0].ctx)
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs == 3:
            await asyncio.sleep(0.2)  # longer than RAN_WELL below: a new fault, not the same one
        if self.runs <= 4:
            raise RuntimeError(f"bug #{self.runs}")
        await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_backoff_doubles_and_starts_over_after_a_good_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "RAN_WELL", 0.1)
    d = Daemon(make_config(tmp_path))
    delays: list[float] = []

    async def instant(seconds: float) -> None:
        delays.append(seconds)

    d._restart_sleep = instant
    driver = Crashy(d)
    task = asyncio.create_task(d._supervise(driver))
    for _ in range(200):
        if driver.runs >= 5:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert delays == [1.0, 2.0, 1.0, 2.0]  # without the reset: 1, 2, 4, 8
    assert d.stats.get("driver_crashes") == 4
    d.journal.close()
