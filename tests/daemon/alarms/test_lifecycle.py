"""Alarms are stored with their audit trail and messages before anything is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import RuleEvent
from daemon.config.schema import AppConfig
from daemon.ports.clock import ManualClock
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL, make_config

T0 = 1_700_000_000.0


def ev(action: str, ts: float, value: float = 9.0, key: str = "z1/s1/temp_high") -> RuleEvent:
    return RuleEvent(action, key, "z1", "s1", "temp_high", "warning", T0 + ts, T0, value, 8.0, value)  # type: ignore[arg-type]


def manager(config: AppConfig, tmp_path: Path) -> tuple[AlertManager, Journal]:
    j = Journal(tmp_path / "a.db")
    return AlertManager(config, j, ManualClock(T0 + 600), Stats()), j


def test_lifecycle_is_stored_with_audit_and_outbox(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("pending", 0)])
    assert j.outbox.find() == []  # nobody is told about a pending alarm
    am.apply([ev("fire", 600)])
    (a,) = j.alerts.find()
    assert (a.state, a.fired, a.value, a.limit_value) == ("firing", T0 + 600, 9.0, 8.0)
    (msg,) = j.outbox.find()
    assert msg.state == "pending" and msg.address == "+8613800138000" and msg.notifier == "out"
    assert msg.text == f"【冷库告警】测试冷库1号库温度9.0℃，高于柑橘（宽皮柑橘/柑/橘）上限8.0℃已10分钟。回复ACK {a.id}确认"
    am.apply([ev("clear", 1200, 7.0)])
    (a,) = j.alerts.find()
    assert a.state == "resolved" and a.resolved == T0 + 1200
    texts = [o.text for o in j.outbox.find()]
    assert len(texts) == 2 and texts[1].startswith("【恢复】测试冷库1号库温度过高已恢复正常（7.0）")
    assert [e[1] for e in j.alerts.events(a.id)] == ["pending", "firing", "resolved"]


def test_cancelled_pending_leaves_a_record_and_no_message(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("pending", 0), ev("cancel", 240)])
    (a,) = j.alerts.find()
    assert a.state == "cancelled" and j.outbox.find() == []
    am.apply([ev("pending", 500)])  # a new excursion opens a new alarm
    assert [x.state for x in j.alerts.find()] == ["pending", "cancelled"]


def test_duplicate_events_are_ignored(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("fire", 600)])
    am.apply([ev("fire", 660)])  # e.g. replayed after a restart
    assert len(j.alerts.find()) == 1 and len(j.outbox.find()) == 1


def test_english_contact_gets_english(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL.replace('phone: "+8613800138000"}', 'phone: "+8613800138000", language: en}'))
    am = AlertManager(cfg, Journal(tmp_path / "e.db"), ManualClock(T0 + 600), Stats())
    am.apply([ev("fire", 600)])
    (msg,) = am.journal.outbox.find()
    assert msg.lang == "en" and msg.text.startswith("[Cold-chain] 测试冷库 Room 1: 9.0 C, above Mandarin")


def test_acknowledge_records_who(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("fire", 600)])
    aid = j.alerts.find()[0].id
    row = am.acknowledge(aid, "zhang", "door closed, compressor reset")
    assert row is not None and row.state == "acknowledged" and row.acked_by == "zhang"
    assert j.alerts.events(aid)[-1][1:] == ("acknowledged", "zhang (web)", "door closed, compressor reset")
    assert am.acknowledge(aid, "zhang", None) is None


ESCALATION = MINIMAL.replace("""contacts:
  - {id: zhang, name: 张师傅, phone: "+8613800138000"}""", """contacts:
  - {id: zhang, name: 张师傅, phone: "+8613800138000"}
  - {id: wang, name: 王经理, phone: "+8613900139000"}
  - {id: liu, name: Liu, phone: "+8613700137000", language: en}
escalation:
  steps:
    - {after: 0m, contacts: [zhang], notifiers: [out, backup]}
    - {after: 15m, contacts: [wang]}
    - {after: 30m, contacts: [liu]}
  repeat: 20m""").replace("notifiers:\n  - {id: out, type: console}", "notifiers:\n  - {id: out, type: console}\n  - {id: backup, type: console}")


def esc_manager(tmp_path: Path) -> tuple[AlertManager, Journal, ManualClock]:
    cfg = make_config(tmp_path, ESCALATION)
    clock = ManualClock(T0 + 600)
    j = Journal(tmp_path / "esc.db")
    return AlertManager(cfg, j, clock, Stats()), j, clock


def told(j: Journal) -> list[str]:
    return [o.contact for o in j.outbox.find()]


@pytest.mark.asyncio
async def test_alarm_stored_in_a_worker_thread_wakes_the_dispatcher_through_its_loop(
        config: AppConfig, tmp_path: Path) -> None:
    """apply() runs in a thread; Event.set() there would not wake the sleeping loop (bench: +200 ms)."""
    am, _ = manager(config, tmp_path)
    loop = asyncio.get_running_loop()
    calls: list[object] = []

    class Spy:
        def is_closed(self) -> bool:
            return False

        def call_soon_threadsafe(self, fn: object, *args: object) -> None:
            calls.append(fn)
            loop.call_soon_threadsafe(fn, *args)  # type: ignore[arg-type]

    am.loop = Spy()  # type: ignore[assignment]
    await asyncio.to_thread(am.apply, [ev("fire", 1000.0)])
    assert calls == [am.outbox_ready.set]
    await asyncio.wait_for(am.outbox_ready.wait(), timeout=5)
