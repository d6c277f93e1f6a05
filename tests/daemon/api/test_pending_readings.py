"""A figure computed over HTTP counts the polled readings still waiting for their commit window.

Polled readings are journaled every `storage.commit_interval` (60 s on a box, 600 s here). A lot checked out
before the window ends used to get a stay with no temperature figure (CI saw it in the two-box region test:
a 2-second stay at the demo's speed), and a longer stay lost its last minute. Lot writes, the lot record and
the compliance report now commit what is pending first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext
from tests.daemon.api.test_history_api import CONFIG, STAFF, serving

SLOW = CONFIG.replace("flush_interval: 0.01, commit_interval: 0.01", "flush_interval: 0.01, commit_interval: 600")
MANAGER = {"Authorization": "Bearer manager-secret"}
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def slow(tmp_path: Path) -> AsyncIterator[tuple[Daemon, ManualClock, httpx.AsyncClient]]:
    async with serving(tmp_path, SLOW) as running:
        yield running


async def settled(d: Daemon, clock: ManualClock) -> int:
    """One reading committed first, so the sensor is online and no state change makes the next ones urgent
    (a reading that changes an alarm or online state is written at once); the journal's count after it."""
    poll(d, clock, 1, 6.0)
    await asyncio.sleep(0.2)
    await d.pipeline.flush()
    return d.journal.readings.count()


async def checked_in(d: Daemon, clock: ManualClock, http: httpx.AsyncClient, code: str) -> int:
    """The sensor settled (`settled`), then a lot of `code` checked in to z1; the journal's count before it."""
    before = await settled(d, clock)
    body = {"code": code, "commodity": "mandarin", "zone": "z1", "quantity": 10, "unit": "kg"}
    assert (await http.post("/api/v1/lots", json=body, headers=STAFF)).status_code == 201
    return before


def poll(d: Daemon, clock: ManualClock, n: int, value: float) -> None:
    """`n` polled readings for s1, 20 s apart, handed over the way a Modbus driver does (no wait for the commit).
    The clock moves little: the silent s2's device alarm (after 5 minutes) would commit them with its event."""
    ctx = d._driver_context("simulated")
    assert isinstance(ctx, DriverContext)
    for _ in range(n):
        clock.advance(20)
        ctx.hand_over([Sample("s1", "temperature", value, "C", ts=clock.now())], "test")


async def test_a_stay_shorter_than_the_commit_window_has_its_figure(slow) -> None:  # type: ignore[no-untyped-def]
    d, clock, http = slow
    before = await checked_in(d, clock, http, "CQ-SHORT-1")
    poll(d, clock, 5, 6.25)
    await asyncio.sleep(0.2)
    assert d.journal.readings.count() == before  # all five still in the window
    assert (await http.post("/api/v1/lots/CQ-SHORT-1/checkout", json={"destination": "center-2"},
                            headers=STAFF)).status_code == 200
    assert d.journal.readings.count() == before + 5
    rec = (await http.get("/api/v1/lots/CQ-SHORT-1", headers=STAFF)).json()
    (stay,) = rec["stays"]
    fig = stay["temperature"]  # the 6.0 before check-in is held into the stay (it counts in min and max)
    assert fig is not None and (fig["count"], fig["min"], fig["max"]) == (5, 6.0, 6.25), fig
    ship = [e for e in d.journal.lot_events.after(0, 10) if e.kind == "ship"]
    assert len(ship) == 1


async def test_the_lot_record_and_the_report_count_pending_readings(slow) -> None:  # type: ignore[no-untyped-def]
    d, clock, http = slow
    before = await checked_in(d, clock, http, "CQ-OPEN-1")
    poll(d, clock, 3, 7.5)
    rec = (await http.get("/api/v1/lots/CQ-OPEN-1", headers=STAFF)).json()
    assert rec["stays"][0]["temperature"]["max"] == 7.5
    poll(d, clock, 2, 8.5)  # pending again: the report of today must see them
    rep = (await http.get("/api/v1/reports/compliance?zone=z1", headers=MANAGER)).json()
    assert d.journal.readings.count() == before + 5
    assert "8.5" in str(rep)
