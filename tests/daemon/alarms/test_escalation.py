"""Escalation: each step pages its contacts when due, repeats past the last, stops when acknowledged, survives a restart."""

from __future__ import annotations

from pathlib import Path

from daemon.alarms.lifecycle import AlertManager
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from tests.daemon.alarms.test_lifecycle import esc_manager, ev, told


def test_escalation_steps_repeat_and_ack_stops_it(tmp_path: Path) -> None:
    am, j, clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600)])
    assert told(j) == ["zhang"]
    clock.advance(14 * 60)
    assert am.escalate() == [] and told(j) == ["zhang"]
    clock.advance(60)  # 15 min after firing: the center manager
    assert len(am.escalate()) == 1 and told(j) == ["zhang", "wang"]
    assert am.escalate() == []  # not twice
    clock.advance(15 * 60)  # 30 min: the logistics manager, in English
    am.escalate()
    assert told(j) == ["zhang", "wang", "liu"] and j.outbox.find()[-1].lang == "en"
    clock.advance(20 * 60)  # repeat the last step every 20 min while unacknowledged
    am.escalate()
    assert told(j) == ["zhang", "wang", "liu", "liu"]
    aid = j.alerts.find()[0].id
    am.acknowledge(aid, "wang", "on my way")
    notices = [o for o in j.outbox.find() if o.msg_key == "ack.notice"]
    assert [o.contact for o in notices] == ["zhang", "liu"]  # not wang: he acknowledged it himself
    assert "王经理" not in notices[0].text and "wang" in notices[0].text
    clock.advance(3600)
    assert am.escalate() == []  # acknowledged: no more pages
    am.apply([ev("clear", 6000, 7.0)])
    resolves = [o.contact for o in j.outbox.find() if o.msg_key == "resolve"]
    assert resolves == ["zhang", "wang", "liu"]  # everyone who was told, once each
    assert [e[1] for e in j.alerts.events(aid)] == ["firing", "escalated", "escalated", "escalated", "acknowledged",
                                                   "resolved"]


def test_escalation_survives_restart(tmp_path: Path) -> None:
    am, j, clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600)])
    j.close()
    am2 = AlertManager(am.cfg, Journal(tmp_path / "esc.db"), clock, Stats())
    clock.advance(15 * 60)
    am2.escalate()
    assert told(am2.journal) == ["zhang", "wang"]
