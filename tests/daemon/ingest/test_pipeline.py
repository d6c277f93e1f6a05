"""Pipeline batching: with `flush_interval: 0` readings that arrive during a commit share the next one."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from daemon.ingest.pipeline import Pipeline
from daemon.ports.clock import Clock
from daemon.ports.model import Reading, Sample
from daemon.ports.stats import Stats
from daemon.storage.db import Database
from daemon.storage.journal import Journal
from daemon.storage.readings import Readings
from tests.conftest import MINIMAL, make_config

pytestmark = pytest.mark.asyncio


class SlowReadings(Readings):
    """Holds the first append until released, and records every batch size."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.batches: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def append_tx(self, tx, readings):  # type: ignore[no-untyped-def]
        self.batches.append(len(readings))
        if len(self.batches) == 1:
            self.entered.set()
            self.release.wait(10)
        return super().append_tx(tx, readings)


class SlowJournal(Journal):
    """A journal whose readings are `SlowReadings`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.readings = slow = SlowReadings(self.db)
        self.batches, self.entered, self.release = slow.batches, slow.entered, slow.release


def journal_with(path: Path, readings: type[Readings]) -> Journal:
    j = Journal(path)
    j.readings = readings(j.db)
    return j


def _sample(v: float) -> Sample:
    return Sample("s1", "temperature", v, "C")


async def test_group_commit_batches_what_arrives_during_a_commit(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL.replace("storage: {journal: journal.db}",
                                                "storage: {journal: journal.db, flush_interval: 0}"))
    assert cfg.storage.flush_interval == 0
    j = SlowJournal(tmp_path / "j.db")
    seen: list[list[Reading]] = []
    p = Pipeline(cfg, j, Clock(), Stats(), subscribers=[seen.append])
    runner = asyncio.create_task(p.run())
    first = asyncio.create_task(p.emit([_sample(5.0)]))
    await asyncio.to_thread(j.entered.wait, 10)  # the first commit started at once, no timer
    later = [asyncio.create_task(p.emit([_sample(5.0 + k / 10)])) for k in range(1, 4)]
    await asyncio.sleep(0)
    j.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 10)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert j.batches == [1, 3]
    assert [len(b) for b in seen] == [1, 3]
    assert j.readings.count() == 4


def _slow_timer(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A config whose flush timer never fires during a test: only a full batch or held events commit."""
    cfg = make_config(tmp_path, MINIMAL)
    cfg.storage.flush_interval = 3600.0  # above what the config accepts (5 s): out of the test's way
    return cfg


async def test_held_events_commit_their_readings_at_once_and_are_released_after(tmp_path: Path) -> None:
    cfg = _slow_timer(tmp_path)
    j = Journal(tmp_path / "j.db")
    released: list[tuple[list[str], int]] = []

    async def release(items: list[str]) -> None:
        released.append((items, j.readings.count()))  # how many readings were committed when the events left

    p = Pipeline(cfg, j, Clock(), Stats(), release=release,
                 screen=lambda rs: [f"hot {r.value}" for r in rs if r.value is not None and r.value > 8])
    runner = asyncio.create_task(p.run())
    quiet = p.submit([_sample(5.0)])
    assert quiet is not None
    for _ in range(20):
        await asyncio.sleep(0)
    assert not quiet.done() and j.readings.count() == 0  # a quiet reading waits for the (hour-long) timer
    hot = p.submit([_sample(9.5)])
    assert hot is not None
    await asyncio.wait_for(asyncio.gather(quiet, hot), 10)  # no timer: the held event forced the commit
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert released == [(["hot 9.5"], 2)]  # released once, after both readings were in the journal


async def test_events_of_readings_that_were_not_stored_are_discarded_not_released(tmp_path: Path) -> None:
    cfg = _slow_timer(tmp_path)

    class FullJournal(Readings):
        def append_tx(self, tx, readings):  # type: ignore[no-untyped-def]
            raise OSError(28, "No space left on device")

    released: list[list[str]] = []
    discarded: list[list[str]] = []

    async def release(items: list[str]) -> None:
        released.append(items)

    p = Pipeline(cfg, journal_with(tmp_path / "j.db", FullJournal), Clock(), Stats(), screen=lambda rs: ["fire"], release=release,
                 discard=lambda items, exc: discarded.append(items))
    fut = p.submit([_sample(9.5)])
    assert fut is not None
    tick = asyncio.create_task(p.after_commit(["tick event"]))  # made after the reading's event
    await p.flush()
    await asyncio.wait_for(tick, 10)
    with pytest.raises(OSError, match="No space"):
        await fut
    assert discarded == [["fire"]]
    assert released == [["tick event"]]  # time-driven events do not depend on the lost readings
    assert p.stats.get("journal_write_errors") == 1


async def test_after_commit_keeps_the_order_the_events_were_made_in(tmp_path: Path) -> None:
    cfg = _slow_timer(tmp_path)
    j = SlowJournal(tmp_path / "j.db")
    released: list[str] = []

    async def release(items: list[str]) -> None:
        released.extend(items)

    p = Pipeline(cfg, j, Clock(), Stats(), screen=lambda rs: [f"reading {r.value}" for r in rs], release=release)
    p.submit([_sample(1.0)])
    first = asyncio.create_task(p.flush())
    await asyncio.to_thread(j.entered.wait, 10)  # first commit in progress
    p.submit([_sample(2.0)])
    tick = asyncio.create_task(p.after_commit(["tick"]))
    await asyncio.sleep(0)
    p.submit([_sample(3.0)])  # made after the tick's events: released after them
    j.release.set()
    await asyncio.wait_for(asyncio.gather(first, tick), 10)
    await p.flush()
    assert released == ["reading 1.0", "reading 2.0", "tick", "reading 3.0"]


async def test_readings_held_back_by_a_full_disk_still_raise_their_alarms(tmp_path: Path) -> None:
    from daemon.ports.errors import ReadingsHeldBack

    class HeldBack(Readings):
        def append_tx(self, tx, readings):  # type: ignore[no-untyped-def]
            raise ReadingsHeldBack("disk full: readings wait, the reserve serves alarms")

    released: list[list[str]] = []
    discarded: list[list[str]] = []

    async def release(items: list[str]) -> None:
        released.append(items)

    p = Pipeline(_slow_timer(tmp_path), journal_with(tmp_path / "j.db", HeldBack), Clock(), Stats(), screen=lambda rs: ["fire"],
                 release=release, discard=lambda items, exc: discarded.append(items))
    fut = p.submit([_sample(12.0)])
    assert fut is not None
    await p.flush()
    with pytest.raises(ReadingsHeldBack):
        await fut  # not stored, so not acknowledged: MQTT brings it back later
    assert released == [["fire"]] and discarded == []


async def test_the_window_of_a_reading_is_its_drivers_kind(tmp_path: Path) -> None:
    """A type whose driver acknowledges after the commit waits flush_interval; any other, commit_interval; and
    the daemon takes the kinds from the drivers themselves (SensorDriver.acknowledges), not from a list of names."""
    from daemon.app.runtime import Daemon
    from drivers.sensors.mqtt import MqttDriver
    from drivers.sensors.simulated import SimulatedDriver

    cfg = make_config(tmp_path, MINIMAL.replace("storage: {journal: journal.db}",
                                                "storage: {journal: journal.db, flush_interval: 0.5, commit_interval: 30}"))
    polled = Pipeline(cfg, Journal(tmp_path / "a.db"), Clock(), Stats())
    acked = Pipeline(cfg, Journal(tmp_path / "b.db"), Clock(), Stats(), acknowledged=frozenset({"simulated"}))
    assert polled._window("simulated", waited=False) == 30 and acked._window("simulated", waited=False) == 0.5
    assert polled._window("simulated", waited=True) == 0.5  # emit() waits: its caller holds the poll meanwhile
    assert MqttDriver.acknowledges and not SimulatedDriver.acknowledges
    d = Daemon(cfg)
    assert d.pipeline._acknowledged == frozenset()  # MINIMAL has a simulated sensor only
    d.journal.close()


async def test_the_live_view_sees_a_polled_reading_when_accepted_not_when_committed(tmp_path: Path) -> None:
    """A polled driver hands over and goes on (`ctx.hand_over`): the page's live value comes from the `accepted`
    hook at once, while the journal gets the reading at the commit window's end (here: the explicit flush)."""
    from daemon.app.runtime import Daemon
    from daemon.ports.sources import DriverContext

    cfg = make_config(tmp_path, MINIMAL.replace("storage: {journal: journal.db}",
                                                "storage: {journal: journal.db, commit_interval: 600}"))
    d = Daemon(cfg)
    ctx = d._driver_context("simulated")
    assert isinstance(ctx, DriverContext)
    ctx.hand_over([Sample("s1", "temperature", 5.5, "C", ts=1_700_000_000.0)], "test")
    assert d.live.sensors["s1"].last["temperature"].value == 5.5  # shown before any commit
    assert d.journal.readings.count() == 0  # not yet journaled: the window has 600 s to go
    await d.pipeline.flush()
    assert [r.value for r in d.journal.readings.read_after(0, 10)] == [5.5]
    d.journal.close()
