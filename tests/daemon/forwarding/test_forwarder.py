"""Forwarder against a fake sink: cursor discipline, backoff, bad-point isolation, resume."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest

from daemon.forwarding.forwarder import Forwarder, catch_up, stop_all
from daemon.ports.clock import ManualClock
from daemon.ports.errors import SinkError
from daemon.ports.model import Quality, Quantity, Reading
from daemon.ports.sinks import AlarmEvent, Batch, Sink, SinkBase
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal

pytestmark = pytest.mark.asyncio
T0 = 1_700_000_000.0


class FakeConfig(SinkBase):
    type: Literal["fake"] = "fake"


class FakeSink(Sink):
    """Records confirmed batches; fails while `down`, refuses readings whose value is in `bad`."""

    Config = FakeConfig
    type_key = "fake"

    def __init__(self, batch_size: int = 100) -> None:
        super().__init__(FakeConfig(id="fake", batch_size=batch_size), {})
        self.down = False
        self.bad: set[float] = set()
        self.confirmed: list[list[int]] = []
        self.calls = 0

    async def write(self, readings: Sequence[Reading]) -> None:
        self.calls += 1
        if self.down:
            raise SinkError(self.source, "connection refused")
        if any(r.value in self.bad for r in readings):
            raise SinkError(self.source, "HTTP 400: unable to parse", retryable=False)
        self.confirmed.append([int(r.id or 0) for r in readings])

    def ids(self) -> list[int]:
        return [i for batch in self.confirmed for i in batch]


def readings(n: int, start: int = 0) -> list[Reading]:
    return [Reading("c1", "z1", "s1", Quantity.TEMPERATURE, float(start + i), T0 + start + i) for i in range(n)]


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.db")


class Sleeps:
    """Records backoff delays instead of sleeping, and yields so the loop goes on."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def forwarder(sink: FakeSink, journal: Journal, sleeps: Sleeps | None = None) -> Forwarder:
    return Forwarder(sink, journal, ManualClock(T0 + 1000), Stats(), poll_interval=0.01, backoff_initial=1.0,
                     backoff_max=8.0, rng=random.Random(1), sleep=sleeps or Sleeps())


async def until(check: object, what: str, deadline: float = 10.0) -> None:
    """Poll an async condition with a bounded deadline (no sleeps as assertions)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not check():  # type: ignore[operator]
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def run_until(f: Forwarder, check: object, what: str) -> None:
    task = asyncio.create_task(f.run())
    try:
        await until(check, what)
    finally:
        await stop_all([f], [task])


async def test_sends_in_batches_and_advances_cursor(journal: Journal) -> None:
    journal.readings.append(readings(250))
    sink = FakeSink(batch_size=100)
    f = forwarder(sink, journal)
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 250, "cursor at 250")
    assert [len(b) for b in sink.confirmed] == [100, 100, 50]
    assert sink.ids() == list(range(1, 251))  # oldest first, each once
    snap = f.snapshot()
    assert snap["connected"] is True and snap["lag_readings"] == 0 and snap["sent"] == 250


async def test_cursor_stays_while_server_down_then_resumes(journal: Journal) -> None:
    journal.readings.append(readings(10))
    sink = FakeSink()
    sink.down = True
    sleeps = Sleeps()
    f = forwarder(sink, journal, sleeps)
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: len(sleeps.delays) >= 5, "five retries")
        assert journal.cursors.get("sink:fake") == 0
        snap = await asyncio.to_thread(f.snapshot)
        assert snap["connected"] is False and "connection refused" in snap["last_error"]
        assert snap["lag_readings"] == 10 and snap["lag_seconds"] == pytest.approx(1000.0)
        sink.down = False
        await until(lambda: journal.cursors.get("sink:fake") == 10, "cursor at 10 after the server is back")
    finally:
        await stop_all([f], [task])
    assert sink.ids() == list(range(1, 11))
    assert f.state.connected is True and f.state.failures == 0


async def test_backoff_doubles_with_jitter_up_to_max(journal: Journal) -> None:
    journal.readings.append(readings(1))
    sink = FakeSink()
    sink.down = True
    sleeps = Sleeps()
    f = forwarder(sink, journal, sleeps)
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: len(sleeps.delays) >= 7, "seven retries")
    finally:
        await stop_all([f], [task])
    caps = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    for delay, cap in zip(sleeps.delays, caps, strict=False):
        assert cap / 2 <= delay <= cap  # equal jitter: half fixed, half random
    assert len(set(sleeps.delays[3:7])) == 4  # jitter really varies the delay


async def test_bad_point_isolated_logged_and_skipped(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    journal.readings.append(readings(64))
    sink = FakeSink(batch_size=64)
    sink.bad = {13.0, 40.0}  # ids 14 and 41
    f = forwarder(sink, journal)
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 64, "cursor past the bad points")
    assert sorted(sink.ids()) == [i for i in range(1, 65) if i not in (14, 41)]
    assert sink.ids() == sorted(sink.ids())  # still oldest first
    assert f.state.rejected == 2 and f.stats.get("forward_rejected") == 2
    assert "reading id 14 " in caplog.text and "reading id 41 " in caplog.text


async def test_restart_resumes_from_cursor(journal: Journal, tmp_path: Path) -> None:
    journal.readings.append(readings(30))
    journal.cursors.set("sink:fake", 12)  # a previous run confirmed up to id 12
    sink = FakeSink()
    f = forwarder(sink, journal)
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 30, "cursor at 30")
    assert sink.ids() == list(range(13, 31))
    journal.close()
    again = Journal(tmp_path / "journal.db")  # the cursor is durable
    assert again.cursors.get("sink:fake") == 30


async def test_wakes_on_new_readings_and_keeps_order(journal: Journal) -> None:
    sink = FakeSink(batch_size=7)
    f = Forwarder(sink, journal, ManualClock(T0), Stats(), poll_interval=3600.0)  # only notify() can wake it
    task = asyncio.create_task(f.run())
    try:
        for k in range(5):
            stored = await asyncio.to_thread(journal.readings.append, readings(10, start=10 * k))
            f.notify(stored)
            await until(lambda k=k: journal.cursors.get("sink:fake") == 10 * (k + 1), f"cursor at {10 * (k + 1)}")
    finally:
        await stop_all([f], [task])
    assert sink.ids() == list(range(1, 51))


async def test_fault_readings_are_forwarded_too(journal: Journal) -> None:
    journal.readings.append([Reading("c1", "z1", "s1", Quantity.TEMPERATURE, 85.0, T0, Quality.FAULT, "known error value 85")])
    sink = FakeSink()
    f = forwarder(sink, journal)
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 1, "cursor at 1")
    assert sink.ids() == [1]


async def test_unexpected_exception_is_retried_not_fatal(journal: Journal) -> None:
    journal.readings.append(readings(3))
    sink = FakeSink()
    broken = {"left": 2}
    write = sink.write

    async def flaky(rs: Sequence[Reading]) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("bug")
        await write(rs)

    sink.write = flaky  # type: ignore[method-assign]
    f = forwarder(sink, journal)
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 3, "cursor at 3 after two crashes")
    assert f.stats.get("forward_errors") == 2


async def test_journal_read_error_does_not_end_forwarding(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    journal.readings.append(readings(3))
    sink = FakeSink()
    f = forwarder(sink, journal)
    real = journal.readings.read_after
    fails = {"left": 2}

    def flaky(last_id: int, limit: int) -> list[Reading]:
        if fails["left"]:
            fails["left"] -= 1
            raise OSError("disk I/O error")
        return real(last_id, limit)

    monkeypatch.setattr(journal.readings, "read_after", flaky)
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 3, "cursor at 3 after two read errors")
    assert f.stats.get("forward_read_errors") == 2 and sink.ids() == [1, 2, 3]


async def test_backlog_read_ahead_is_dropped_when_a_batch_fails(journal: Journal) -> None:
    """The next batch is read while one is on the wire; a failed send must not skip past it."""
    journal.readings.append(readings(350))
    fail_on = {2}  # the second write fails once, after the third batch was already read ahead

    class Flaky(FakeSink):
        async def write(self, rs: Sequence[Reading]) -> None:
            self.calls += 1
            if self.calls in fail_on:
                raise SinkError(self.source, "connection reset")
            self.confirmed.append([int(r.id or 0) for r in rs])

    sink = Flaky(batch_size=100)
    f = forwarder(sink, journal)
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 350, "cursor at 350")
    assert sink.ids() == list(range(1, 351))  # oldest first, each once
    assert [len(b) for b in sink.confirmed] == [100, 100, 100, 50]


class GatedSink(FakeSink):
    """Up to two batches on the wire; each is answered (by FakeSink.write: confirmed, or refused if
    down or bad) only when the test opens its gate, so answers can come in any order."""

    max_in_flight = 2

    def __init__(self, batch_size: int = 100) -> None:
        super().__init__(batch_size)
        self.sends: list[tuple[Batch, asyncio.Event]] = []  # in the order put on the wire
        self.on_wire = self.most_on_wire = 0

    async def write_batch(self, batch: Batch) -> None:
        gate = asyncio.Event()
        self.sends.append((batch, gate))
        self.on_wire += 1
        self.most_on_wire = max(self.most_on_wire, self.on_wire)
        try:
            await gate.wait()
            await self.write(batch.payload)  # type: ignore[arg-type]
        finally:
            self.on_wire -= 1

    def answer(self, i: int) -> None:
        self.sends[i][1].set()

    def spans(self) -> list[tuple[int, int]]:
        return [(b.after, b.last) for b, _ in self.sends]


async def settle(n: int = 20) -> None:
    """Let the forwarder take every step it can without new answers."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_two_batches_on_the_wire_cursor_moves_only_over_a_confirmed_prefix(journal: Journal) -> None:
    journal.readings.append(readings(300))
    sink = GatedSink(batch_size=100)
    f = forwarder(sink, journal)
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: len(sink.sends) == 2, "two batches on the wire")
        sink.answer(1)  # the second batch is confirmed first
        await until(lambda: len(sink.confirmed) == 1, "second batch confirmed by the server")
        await settle()
        assert journal.cursors.get("sink:fake") == 0 and f.state.cursor == 0 and f.state.sent == 0
        assert len(sink.sends) == 2  # the window is full until the oldest answers
        sink.answer(0)
        await until(lambda: len(sink.sends) == 3, "third batch sent once the first is confirmed")
        # the third batch may go on the wire a step before both confirmations are counted: wait, do not race
        await until(lambda: f.state.cursor == 200 and f.state.sent == 200, "cursor over both confirmed batches")
        sink.answer(2)
        await until(lambda: journal.cursors.get("sink:fake") == 300, "cursor at 300")
    finally:
        await stop_all([f], [task])
    assert sink.spans() == [(0, 100), (100, 200), (200, 300)]
    assert sorted(sink.ids()) == list(range(1, 301)) and sink.most_on_wire == 2


async def test_a_failed_batch_sends_the_ones_after_it_again(journal: Journal) -> None:
    """The server took the second batch, then the first failed: the cursor stays before both, both go
    again (InfluxDB keeps one point per series and time), and `sent` counts each reading once."""
    journal.readings.append(readings(300))
    sink = GatedSink(batch_size=100)
    sleeps = Sleeps()
    f = forwarder(sink, journal, sleeps)
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: len(sink.sends) == 2, "two batches on the wire")
        sink.answer(1)
        await until(lambda: len(sink.confirmed) == 1, "second batch confirmed by the server")
        sink.down = True
        sink.answer(0)
        await until(lambda: len(sleeps.delays) == 1, "a backoff after the failure")
        assert journal.cursors.get("sink:fake") == 0 and f.state.failures == 1
        sink.down = False
        await until(lambda: len(sink.sends) == 4, "both batches sent again")
        assert sink.spans()[2:] == [(0, 100), (100, 200)]
        sink.answer(3)
        sink.answer(2)
        await until(lambda: len(sink.sends) == 5, "then the third")
        sink.answer(4)
        await until(lambda: journal.cursors.get("sink:fake") == 300, "cursor at 300")
    finally:
        await stop_all([f], [task])
    assert [c[0] for c in sink.confirmed] == [101, 101, 1, 201]  # the second batch twice: at least once
    assert f.state.sent == 300 and f.stats.get("forward_sent") == 300 and f.stats.get("forward_errors") == 1


async def test_a_refused_reading_in_the_oldest_batch_with_another_on_the_wire(journal: Journal) -> None:
    journal.readings.append(readings(200))
    sink = GatedSink(batch_size=100)
    sink.bad = {13.0}  # id 14
    f = forwarder(sink, journal)
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: len(sink.sends) == 2, "two batches on the wire")
        sink.answer(1)
        sink.answer(0)  # refused: isolated by halving through write(), not gated
        await until(lambda: f.state.cursor == 100 and len(sink.sends) == 3, "first settled, second sent again")
        sink.answer(2)
        await until(lambda: journal.cursors.get("sink:fake") == 200, "cursor at 200")
    finally:
        await stop_all([f], [task])
    assert set(sink.ids()) == set(range(1, 201)) - {14}
    assert f.state.rejected == 1 and f.state.sent == 199


async def test_stop_keeps_what_the_server_confirmed_in_order(journal: Journal) -> None:
    journal.readings.append(readings(300))
    sink = GatedSink(batch_size=100)
    f = forwarder(sink, journal)
    task = asyncio.create_task(f.run())
    await until(lambda: len(sink.sends) == 2, "two batches on the wire")
    f.stop()
    sink.answer(1)
    sink.answer(0)
    await asyncio.wait_for(task, 10)
    assert journal.cursors.get("sink:fake") == 200 and len(sink.sends) == 2


async def test_cursor_past_the_journal_is_reset_and_everything_sent(journal: Journal,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A journal restored from a backup (or replaced) under a cursor: its ids start below the cursor."""
    journal.readings.append(readings(10))
    journal.cursors.set("sink:fake", 500)
    sink = FakeSink()
    f = forwarder(sink, journal)  # found when the forwarder starts
    assert "sink:fake: cursor at journal id 500, but the newest reading is id 10" in caplog.text
    assert journal.cursors.get("sink:fake") == 0 and f.stats.get("forward_cursor_resets") == 1
    await run_until(f, lambda: journal.cursors.get("sink:fake") == 10, "cursor at 10")
    assert sink.ids() == list(range(1, 11)) and f.state.cursor_resets == 1


async def test_cursor_past_the_journal_found_while_running(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    journal.readings.append(readings(10))
    sink = FakeSink()
    f = forwarder(sink, journal)
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: journal.cursors.get("sink:fake") == 10, "cursor at 10")
        with journal.transaction() as db:  # the newest rows vanish under the forwarder: new ones reuse their ids
            db.execute("DELETE FROM readings WHERE id > 5")
        f.notify(journal.readings.append(readings(3, start=100)))  # ids 6, 7, 8
        await until(lambda: f.state.cursor_resets == 1 and journal.cursors.get("sink:fake") == 8, "reset, then cursor at 8")
    finally:
        await stop_all([f], [task])
    assert sink.ids()[10:] == list(range(1, 9))  # everything the journal holds now, once more
    # the forwarder may see the vanished rows before or after the new ones arrive: newest id 5 or 8, one reset
    assert f.stats.get("forward_cursor_resets") == 1
    assert "newest reading is id 8" in caplog.text or "newest reading is id 5" in caplog.text


async def test_alarm_event_cursor_past_the_journal_is_reset(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    class EventSink(FakeSink):
        supports_events = True

        async def write_events(self, events: Sequence[AlarmEvent]) -> None:
            raise AssertionError("no events in this journal")

    journal.cursors.set("events:fake", 7)
    f = forwarder(EventSink(), journal)
    assert journal.cursors.get("events:fake") == 0 and f.events_cursor == 0 and f.state.cursor_resets == 1
    assert "events:fake: cursor at alarm event id 7, but the newest is id 0" in caplog.text


async def test_a_clean_stop_forwards_what_was_committed_before_it(journal: Journal) -> None:
    sink = FakeSink(batch_size=7)
    f = Forwarder(sink, journal, ManualClock(T0), Stats(), poll_interval=3600.0)  # only a wake-up sends
    task = asyncio.create_task(f.run())
    try:
        await asyncio.to_thread(journal.readings.append, readings(20))  # committed, nobody told the forwarder
        await catch_up([f], journal.readings.max_id())
    finally:
        await stop_all([f], [task])
    assert sink.ids() == list(range(1, 21)) and journal.cursors.get("sink:fake") == 20


async def test_catch_up_does_not_wait_for_a_failing_server(journal: Journal) -> None:
    sink = FakeSink()
    f = forwarder(sink, journal)
    f.state.failures = 3  # its server has not answered the last attempts
    journal.readings.append(readings(5))
    await asyncio.wait_for(catch_up([f], journal.readings.max_id(), timeout=60.0), 5)  # returns at once
    assert journal.cursors.get("sink:fake") == 0
