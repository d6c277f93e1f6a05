"""The alarm path does not wait for the journal's flush timer: rules screen readings as they arrive, and a
reading that changes an alarm is committed at once, before its alarm and SMS are stored (pipeline.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Sample
from tests.conftest import MINIMAL, make_config
from tests.peers import until

T0 = 1_700_000_000.0
CONFIG = MINIMAL.replace("commodity: mandarin}", "commodity: mandarin, alarms: {temperature: {delay: 0}}}").replace(
    "type: simulated, setpoint: 6.5}", "type: simulated, setpoint: 6.5, failures: [{kind: silent, at: 0}]}")


@pytest.mark.asyncio
async def test_an_alarm_reading_is_committed_and_paged_without_waiting_for_the_flush_timer(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, CONFIG)
    cfg.storage.flush_interval = 3600.0  # beyond what a config may say: the timer cannot be what commits
    cfg.storage.commit_interval = 3600.0
    clock = ManualClock(T0)
    d = Daemon(cfg, clock=clock)
    await d.start()
    try:
        quiet = d.pipeline.submit([Sample("s1", "temperature", 6.0, "C", ts=clock.now())])
        assert quiet is not None
        for _ in range(10):
            await asyncio.sleep(0)
        assert not quiet.done() and d.journal.readings.count() == 0  # quiet readings wait for the batch
        clock.advance(30)
        hot = d.pipeline.submit([Sample("s1", "temperature", 12.0, "C", ts=clock.now())])
        assert hot is not None
        await asyncio.wait_for(asyncio.gather(quiet, hot), 10)
        assert d.journal.readings.count() == 2
        await until(lambda: [a.state for a in d.journal.alerts.find()] == ["firing"], "alarm")
        await until(d.journal.outbox.find, "message in the outbox")
        (alert,) = d.journal.alerts.find()
        assert alert.value == 12.0 and alert.sensor == "s1"
    finally:
        await d.stop()
