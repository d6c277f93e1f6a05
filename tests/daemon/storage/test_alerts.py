"""The alerts repository: an alarm's row and audit entries, written in the caller's transaction."""

from __future__ import annotations

from pathlib import Path

from daemon.storage.alerts import NewAlert
from daemon.storage.journal import Journal

NEW = NewAlert("z1/s1/temp_high", "z1", "s1", "temp_high", "warning", 100.0, 9.0, 8.0, 9.0, None)


def test_an_alarm_from_pending_to_resolved(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    a = j.alerts
    with j.transaction() as tx:
        aid = a.insert(tx, NEW, "pending")
        a.add_event(tx, aid, 100.0, "pending")
        assert a.open_by_key(tx, NEW.key) == a.load(tx, aid)
        a.fire(tx, aid, 700.0, 9.5, 9.5, "detail|x=1", 1600.0)
        a.add_event(tx, aid, 700.0, "firing")
    row = a.get(aid)
    assert row is not None and (row.state, row.fired, row.peak, row.detail) == ("firing", 700.0, 9.5, "detail|x=1")
    assert a.due_escalations(1599.0) == [] and a.due_escalations(1600.0) == [aid]
    with j.transaction() as tx:
        esc = a.escalation(tx, aid)
        assert esc is not None and (esc.state, esc.step, esc.due, esc.fired) == ("firing", 0, 1600.0, 700.0)
        a.set_escalation(tx, aid, 1, 2500.0)
        a.acknowledge(tx, aid, 800.0, "zhang")
        a.add_event(tx, aid, 800.0, "acknowledged", "door shut", "zhang (web)")
        assert a.state(tx, aid) == "acknowledged"
    assert a.due_escalations(9999.0) == []  # acknowledged: no more steps
    with j.transaction() as tx:
        a.resolve(tx, aid, 900.0, None, 7.0)
        assert a.open_by_key(tx, NEW.key) is None
    row = a.get(aid)
    assert row is not None and (row.state, row.peak, row.value, row.acked_by) == ("resolved", 9.5, 7.0, "zhang")
    assert a.events(aid) == [(100.0, "pending", "system", None), (700.0, "firing", "system", None),
                             (800.0, "acknowledged", "zhang (web)", "door shut")]
    assert a.count_by_state() == [("resolved", 1)]
    assert a.max_event_id() == 3
    (first, *_) = a.events_after(0, 10, "site-1")
    assert (first.alert_id, first.state, first.site, first.zone, first.kind) == (aid, "pending", "site-1", "z1",
                                                                                   "temp_high")


def test_find_filters_and_cancel(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    with j.transaction() as tx:
        one = j.alerts.insert(tx, NEW, "pending")
        two = j.alerts.insert(tx, NewAlert("z2/s2/no_data", "z2", "s2", "no_data", "critical", 1.0, None, None,
                                           None, None), "firing")
        j.alerts.cancel(tx, one, 200.0, 9.1)
    assert [r.id for r in j.alerts.find()] == [two, one]  # newest first
    assert [r.id for r in j.alerts.find(open_only=True)] == [two]
    assert [r.id for r in j.alerts.find(zone="z1")] == [one]
    assert j.alerts.get(one) is not None and j.alerts.get(one).state == "cancelled"  # type: ignore[union-attr]
    assert j.alerts.get(999) is None


def test_escalation_times_move_with_a_clock_step(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    with j.transaction() as tx:
        aid = j.alerts.insert(tx, NEW, "pending")
        j.alerts.fire(tx, aid, 700.0, 9.0, 9.0, None, 1600.0)
        j.alerts.shift_timers(tx, -100.0)
    assert j.alerts.due_escalations(1500.0) == [aid]
