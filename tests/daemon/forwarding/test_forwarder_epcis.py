"""The forwarder's third cursor (`epcis:<sink>`): lot events in order, a refused one skipped and counted,
an outage retried without skipping, and a cursor past the journal set back to 0 (unit test, fake sink)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from daemon.forwarding.forwarder import Forwarder, stop_all
from daemon.ports.clock import ManualClock
from daemon.ports.errors import SinkError
from daemon.ports.sinks import LotEpcisEvent
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from tests.daemon.forwarding.test_forwarder import T0, FakeSink, Sleeps, journal, until

__all__ = ["journal"]
pytestmark = pytest.mark.asyncio


class EpcisSink(FakeSink):
    supports_epcis = True

    def __init__(self) -> None:
        super().__init__()
        self.got: list[str] = []
        self.down_for = 0
        self.refuse: set[str] = set()

    async def write_epcis(self, events: Sequence[LotEpcisEvent]) -> None:
        if self.down_for:
            self.down_for -= 1
            raise SinkError(self.source, "broker unreachable")
        if any(e.lot in self.refuse for e in events):
            raise SinkError(self.source, "refused", retryable=False)
        self.got += [e.body["eventID"] for e in events]


def add_events(j: Journal, n: int) -> None:
    with j.transaction() as tx:
        for i in range(n):
            j.lot_events.add(tx, T0 + i, "commission", f"L-{i}", "li", T0 + i, zone="z1")


def source(j: Journal) -> Any:
    def read(after: int, limit: int) -> list[LotEpcisEvent]:
        return [LotEpcisEvent(e.id, e.lot, {"eventID": f"id-{e.id}"}) for e in j.lot_events.after(after, limit)]
    return read


def make(sink: EpcisSink, j: Journal, sleeps: Sleeps) -> Forwarder:
    return Forwarder(sink, j, ManualClock(T0 + 1000), Stats(), poll_interval=0.01, sleep=sleeps, epcis=source(j))


async def test_lot_events_in_order_outage_retried_refused_one_skipped(journal: Journal) -> None:
    add_events(journal, 5)
    sink = EpcisSink()
    sink.down_for = 2
    sink.refuse = {"L-3"}
    f = make(sink, journal, Sleeps())
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: journal.cursors.get("epcis:fake") == 5, "epcis cursor at 5")
    finally:
        await stop_all([f], [task])
    assert sink.got == ["id-1", "id-2", "id-3", "id-5"]  # id-4 (lot L-3) refused: skipped, the rest in order
    assert f.stats.get("forward_epcis_rejected") == 1 and f.stats.get("forward_epcis_sent") == 4
    assert f.state.failures == 0 and f.stats.get("forward_errors") == 2


async def test_epcis_cursor_past_the_journal_is_reset(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    add_events(journal, 2)
    journal.cursors.set("epcis:fake", 9)
    with caplog.at_level(logging.ERROR):
        f = make(EpcisSink(), journal, Sleeps())
    assert journal.cursors.get("epcis:fake") == 0 and f.epcis_cursor == 0 and f.state.cursor_resets == 1
    assert "cursor at lot event id 9, but the newest is id 2" in caplog.text


async def test_a_sink_without_epcis_never_reads_lot_events(journal: Journal) -> None:
    add_events(journal, 2)

    def read(after: int, limit: int) -> list[LotEpcisEvent]:
        raise AssertionError("not asked")

    f = Forwarder(FakeSink(), journal, ManualClock(T0), Stats(), poll_interval=0.01, sleep=Sleeps(), epcis=read)
    task = asyncio.create_task(f.run())
    try:
        await until(lambda: f.state.connected is not False, "a loop turn")
        await asyncio.sleep(0.05)
    finally:
        await stop_all([f], [task])
    assert journal.cursors.get("epcis:fake") == 0
