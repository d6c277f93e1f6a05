"""Clock jumps: a Pi without RTC boots with a stale time, then NTP steps the clock (forward, or back when
a fake-hwclock saved a time ahead). New readings carry the corrected time; alarm delays, no-data
silence, escalation and retry times and maintenance mutes move with the step, so nothing fires early,
nothing is invented, and readings after a backward step are not taken for late ones.

The daemon's wall clock is a function the test steps; the ticker's work is called directly
(`Daemon.tick`), so no assertion depends on how fast this machine is.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.ports.model import Sample
from tests.conftest import make_config
from tests.drivers.sensors.mqtt.test_driver import until

HOUR = 3600.0
CONFIG = """
site: {id: jump, name: 校时测试}
storage: {journal: journal.db, flush_interval: 0.02, commit_interval: 0.02}
zones:
  - {id: z1, name: 1号库, commodity: mandarin, alarms: {temperature: {high: 8.0, delay: 10m, clear_delay: 5m}}}
  - {id: z2, name: 2号库, commodity: mandarin, alarms: {temperature: {high: 8.0, delay: 0s}}}
  - {id: z3, name: 3号库, commodity: mandarin}
sensors:
  - {id: s1, zone: z1, type: simulated, setpoint: 6.0, stale_after: 15m, failures: [{kind: silent, at: 0}]}
  - {id: s2, zone: z2, type: simulated, setpoint: 6.0, stale_after: 15m, failures: [{kind: silent, at: 0}]}
  - {id: s3, zone: z3, type: simulated, setpoint: 6.0, stale_after: 15m, failures: [{kind: silent, at: 0}]}
notifiers:
  - {id: out, type: console, stream: log}
contacts:
  - {id: zhang, name: 张师傅, phone: "+8613800138000"}
escalation:
  steps: [{after: 0m, contacts: [zhang]}, {after: 30m, contacts: [zhang]}]
api: {enabled: false}
"""


class Wall:
    """The system clock as the daemon sees it: real seconds passing, plus the steps NTP makes."""

    def __init__(self, boot: float) -> None:
        self.offset = boot - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds


def states(d: Daemon) -> dict[tuple[str, str], str]:
    return {(a.zone, a.kind): a.state for a in d.journal.alerts.find(limit=1000)}


def esc_next(d: Daemon, alert_id: int) -> float:
    return float(d.journal.read("SELECT esc_next FROM alerts WHERE id=?", (alert_id,))[0][0])


@pytest.mark.asyncio
@pytest.mark.parametrize("step", [+9 * HOUR, -3 * HOUR])
async def test_clock_step_moves_timers_and_new_stamps(tmp_path: Path, step: float) -> None:
    wall = Wall(boot=1_700_000_000.0)  # the stale time a Pi without RTC boots with
    synced = False  # what the kernel says of NTP: not yet
    clock = Clock(wall=wall)
    clock.kernel_synchronised = lambda: synced
    d = Daemon(make_config(tmp_path, CONFIG), clock=clock)
    await d.start()
    try:
        await d.pipeline.emit([Sample("s1", "temperature", 9.5, "C"), Sample("s2", "temperature", 9.5, "C"),
                               Sample("s3", "temperature", 6.0, "C")])
        await until(lambda: states(d) == {("z1", "temp_high"): "pending", ("z2", "temp_high"): "firing"},
                    "one alarm pending, one firing")
        (firing,) = d.journal.alerts.find(open_only=True, zone="z2")
        sent = len(d.journal.outbox.find(alert_id=firing.id))
        assert esc_next(d, firing.id) == pytest.approx(wall() + 30 * 60, abs=60)
        mid = d.mute("z3", 2 * HOUR, "defrost by hand", "zhang")

        before = d.journal.readings.query(sensor="s3")
        assert [r.note for r in before] == ["clock not synchronised"]  # marked, so exports show it
        last_before = max(r.id or 0 for s in ("s1", "s2", "s3") for r in d.journal.readings.query(sensor=s))

        wall.step(step)  # NTP
        synced = True
        await d.tick()
        assert d.stats.get("clock_jumps") == 1
        # nothing fired early (10 min delay), no silence invented (15 min stale_after), no early escalation
        assert states(d) == {("z1", "temp_high"): "pending", ("z2", "temp_high"): "firing"}
        assert len(d.journal.outbox.find(alert_id=firing.id)) == sent, "escalated early"
        assert esc_next(d, firing.id) == pytest.approx(wall() + 30 * 60, abs=60)
        (m,) = [m for m in d.journal.mutes.find(active_at=wall()) if m[0] == mid]
        assert m[3] == pytest.approx(wall() + 2 * HOUR, abs=60), "the mute did not keep its two hours"

        # a reading after the step carries the corrected time and is evaluated, not taken for a late one:
        # back in range before the delay ended, it cancels the pending alarm
        await d.pipeline.emit([Sample("s1", "temperature", 6.0, "C")])
        last = max(d.journal.readings.query(sensor="s1"), key=lambda r: r.id or 0)
        assert last.ts == pytest.approx(wall(), abs=5) and last.note == ""
        # the step is on record, with the last reading the old clock stamped (stored stamps are not rewritten)
        (entry,) = d.journal.audit.entries("clock")
        assert entry["action"] == "clock.step" and entry["who"] == "coldchain"
        assert entry["detail"]["step_s"] == pytest.approx(step, abs=5)
        assert entry["detail"]["last_reading_before"] == last_before
        await until(lambda: states(d)[("z1", "temp_high")] == "cancelled", "the pending alarm cancelled")
    finally:
        await d.stop()


def test_simulated_and_manual_clocks_never_jump() -> None:
    assert Clock(speed=60).jumped() == 0.0
    assert Clock(start=1_700_000_000.0).jumped() == 0.0
    wall = Wall(boot=1_700_000_000.0)
    c = Clock(wall=wall)
    wall.step(30)
    assert c.jumped() == 0.0  # NTP slewing or a small step: drift, not a jump
    wall.step(-600)
    assert c.jumped() == pytest.approx(-600, abs=1)
    assert c.jumped() == 0.0


def test_only_the_real_wall_clock_asks_the_kernel_and_a_jump_asks_again() -> None:
    assert Clock(speed=60).synchronised() is None  # a demo's simulated time is never "unsynchronised"
    asked: list[bool] = []

    def kernel() -> bool:
        asked.append(True)
        return len(asked) > 1

    wall = Wall(boot=1_700_000_000.0)
    c = Clock(wall=wall)
    c.kernel_synchronised = kernel
    assert c.synchronised() is False and c.synchronised() is False
    assert len(asked) == 1  # cached: one adjtimex per 30 s, not one per batch
    wall.step(3600)
    assert c.jumped() == pytest.approx(3600, abs=1)
    assert c.synchronised() is True and len(asked) == 2
