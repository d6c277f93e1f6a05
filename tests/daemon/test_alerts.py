"""Alarms are stored with their audit trail and messages before anything is sent."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from daemon.alerts import AlertManager, Dispatcher
from daemon.clock import ManualClock
from daemon.config import AppConfig
from daemon.errors import NotifierError
from daemon.journal import Journal
from daemon.notify import Message, Notifier
from daemon.rules import RuleEvent
from daemon.stats import Stats
from drivers.notifiers.console import ConsoleConfig, ConsoleNotifier
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
    assert j.outbox() == []  # nobody is told about a pending alarm
    am.apply([ev("fire", 600)])
    (a,) = j.alerts()
    assert (a.state, a.fired, a.value, a.limit_value) == ("firing", T0 + 600, 9.0, 8.0)
    (msg,) = j.outbox()
    assert msg.state == "pending" and msg.address == "+8613800138000" and msg.notifier == "out"
    assert msg.text == f"【冷库告警】测试冷库1号库温度9.0℃，高于柑橘（宽皮柑橘/柑/橘）上限8.0℃已10分钟。回复ACK {a.id}确认"
    am.apply([ev("clear", 1200, 7.0)])
    (a,) = j.alerts()
    assert a.state == "resolved" and a.resolved == T0 + 1200
    texts = [o.text for o in j.outbox()]
    assert len(texts) == 2 and texts[1].startswith("【恢复】测试冷库1号库温度过高已恢复正常（7.0）")
    assert [e[1] for e in j.alert_events(a.id)] == ["pending", "firing", "resolved"]


def test_cancelled_pending_leaves_a_record_and_no_message(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("pending", 0), ev("cancel", 240)])
    (a,) = j.alerts()
    assert a.state == "cancelled" and j.outbox() == []
    am.apply([ev("pending", 500)])  # a new excursion opens a new alarm
    assert [x.state for x in j.alerts()] == ["pending", "cancelled"]


def test_duplicate_events_are_ignored(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("fire", 600)])
    am.apply([ev("fire", 660)])  # e.g. replayed after a restart
    assert len(j.alerts()) == 1 and len(j.outbox()) == 1


def test_english_contact_gets_english(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL.replace('phone: "+8613800138000"}', 'phone: "+8613800138000", language: en}'))
    am = AlertManager(cfg, Journal(tmp_path / "e.db"), ManualClock(T0 + 600), Stats())
    am.apply([ev("fire", 600)])
    (msg,) = am.journal.outbox()
    assert msg.lang == "en" and msg.text.startswith("[Cold-chain] 测试冷库 Room 1: 9.0 C, above Mandarin")


def test_acknowledge_records_who(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("fire", 600)])
    aid = j.alerts()[0].id
    row = am.acknowledge(aid, "zhang", "door closed, compressor reset")
    assert row is not None and row.state == "acknowledged" and row.acked_by == "zhang"
    assert j.alert_events(aid)[-1][1:] == ("acknowledged", "zhang", "door closed, compressor reset")
    assert am.acknowledge(aid, "zhang", None) is None


class Flaky(Notifier):
    Config = ConsoleConfig

    def __init__(self) -> None:
        super().__init__(ConsoleConfig(id="out", type="console"))
        self.fail = True
        self.sent: list[Message] = []

    async def send(self, message: Message) -> str | None:
        if self.fail:
            raise NotifierError("modem:/dev/ttyUSB2", "no network")
        self.sent.append(message)
        return "ref-1"


def test_dispatcher_retries_and_never_resends(config: AppConfig, tmp_path: Path) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("fire", 600)])
    flaky = Flaky()
    d = Dispatcher(j, {"out": flaky}, am.stats, am.outbox_ready)
    assert asyncio.run(d.drain()) == 0
    (row,) = j.outbox()
    assert row.state == "pending" and row.attempts == 1 and "no network" in (row.last_error or "")
    flaky.fail = False
    assert asyncio.run(d.drain()) == 1
    assert asyncio.run(d.drain()) == 0  # sent once, not again (also after a restart: state is in the journal)
    (row,) = Journal(tmp_path / "a.db").outbox()
    assert row.state == "sent" and row.ref == "ref-1" and len(flaky.sent) == 1


def test_console_notifier_prints_exact_text(config: AppConfig, tmp_path: Path) -> None:
    buf = io.StringIO()
    n = ConsoleNotifier(ConsoleConfig(id="c", type="console"), None, out=buf)
    asyncio.run(n.send(Message(1, 1, "zhang", "+8613800138000", "【冷库告警】测试", "zh-CN")))
    assert buf.getvalue() == "SMS to zhang <+8613800138000>: 【冷库告警】测试\n"
