"""The journal refuses a write (disk full, I/O error) at the worst moment: while an alarm is stored, or while
the outbox marks a message `sending`. The alarm is raised again rather than lost, and the outbox dispatcher
runs again rather than dying silently (which would stop every SMS until a restart)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.ports.errors import JournalFull
from tests.conftest import make_config
from tests.drivers.sensors.mqtt.test_driver import until

FULL = JournalFull("database or disk is full")  # what a refused write raises past the storage boundary


def failing(fn: Callable[..., Any], times: int) -> Callable[..., Any]:
    """`fn`, except that its first `times` calls raise SQLITE_FULL."""
    left = [times]

    def call(*args: Any, **kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise FULL
        return fn(*args, **kwargs)

    return call


@pytest.mark.asyncio
async def test_alarm_refused_by_the_journal_is_raised_again(tmp_path: Path) -> None:
    d = Daemon(make_config(tmp_path), clock=Clock())
    try:
        now = d.clock.now()
        events = d.rules.box("disk", True, now, "box.disk|free=1")
        assert events
        d.alerts.apply = failing(d.alerts.apply, 1)  # type: ignore[method-assign]
        with pytest.raises(JournalFull):
            await d._apply(events)
        assert d.journal.alerts.find() == []
        again = d.rules.box("disk", True, now + 60, "box.disk|free=1")
        assert [e.action for e in again] == ["fire"], "the rules still believed the refused alarm was stored"
        await d._apply(again)
        assert [(a.kind, a.state) for a in d.journal.alerts.find()] == [("box_health", "firing")]
    finally:
        d.journal.close()


@pytest.mark.asyncio
async def test_alarm_refused_inside_the_alert_manager_reaches_the_rules(tmp_path: Path) -> None:
    """`AlertManager.apply` stores the other events, then raises: before, it logged the refusal and returned,
    so the rules believed the alarm stored and never raised it again."""
    d = Daemon(make_config(tmp_path), clock=Clock())
    try:
        now = d.clock.now()
        events = d.rules.box("disk", True, now, "box.disk|free=1") + d.rules.box("clock", True, now, "box.clock")
        assert len(events) == 2
        d.alerts._apply_one = failing(d.alerts._apply_one, 1)  # type: ignore[method-assign]
        with pytest.raises(JournalFull):
            await d._apply(events)
        assert [a.key for a in d.journal.alerts.find()] == [events[1].key], "the second event was not stored"
        again = d.rules.box("disk", True, now + 60, "box.disk|free=1")
        assert [e.action for e in again] == ["fire"], "the rules still believed the refused alarm was stored"
    finally:
        d.journal.close()


@pytest.mark.asyncio
async def test_outbox_dispatcher_outlives_a_refused_write(tmp_path: Path) -> None:
    d = Daemon(make_config(tmp_path), clock=Clock())
    d.journal.outbox.claim = failing(d.journal.outbox.claim, 2)  # type: ignore[method-assign]
    await d.start()
    try:
        await d._apply(d.rules.box("disk", True, d.clock.now(), "box.disk|free=1"))
        await until(lambda: d.journal.outbox.find(state="sent"), "the box-health SMS sent after the refused writes",
                    timeout=30)
        assert d.stats.get("task_errors") >= 1
        assert not next(t for t in d._tasks if t.get_name() == "dispatcher").done()
    finally:
        await d.stop()
