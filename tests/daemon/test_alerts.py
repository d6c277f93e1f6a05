"""Alarms are stored with their audit trail and messages before anything is sent."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from daemon.alarms.dispatcher import Dispatcher
from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import RuleEvent
from daemon.config.schema import AppConfig
from daemon.ports.clock import ManualClock
from daemon.ports.errors import NotifierError
from daemon.ports.notify import Incoming, Message, Notifier
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
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
    clock = ManualClock(T0 + 600)
    d = Dispatcher(j, {"out": flaky}, am.stats, am.outbox_ready, clock)
    assert asyncio.run(d.drain()) == 0
    (row,) = j.outbox.find()
    assert row.state == "pending" and row.attempts == 1 and "no network" in (row.last_error or "")
    flaky.fail = False
    assert asyncio.run(d.drain()) == 0  # backoff: not due yet
    clock.advance(30)
    assert asyncio.run(d.drain()) == 1
    assert asyncio.run(d.drain()) == 0  # sent once, not again (also after a restart: state is in the journal)
    (row,) = Journal(tmp_path / "a.db").outbox.find()
    assert row.state == "sent" and row.ref == "ref-1" and len(flaky.sent) == 1


def test_console_notifier_prints_exact_text(config: AppConfig, tmp_path: Path) -> None:
    buf = io.StringIO()
    n = ConsoleNotifier(ConsoleConfig(id="c", type="console"), None, out=buf)
    asyncio.run(n.send(Message(1, 1, "zhang", "+8613800138000", "【冷库告警】测试", "zh-CN")))
    assert buf.getvalue() == "SMS to zhang <+8613800138000>: 【冷库告警】测试\n"


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


def test_sms_reply_acknowledges_matching_alarm(tmp_path: Path) -> None:
    am, j, _clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600)])
    aid = j.alerts.find()[0].id
    out = am.handle_incoming(Incoming("+8613900139000", f"ACK {aid}", T0 + 700, "out"))
    assert out == "no matching alarm"  # wang was not told yet
    out = am.handle_incoming(Incoming("8613800138000", f"ack{aid} 门没关好，已关", T0 + 700, "out"))
    assert out == "acknowledged"
    a = j.alerts.get(aid)
    assert a is not None and a.state == "acknowledged" and a.acked_by == "zhang"
    assert j.alerts.events(aid)[-1][2:] == ("zhang (SMS 8613800138000)", "门没关好，已关")
    reply = [o for o in j.outbox.find() if o.msg_key == "ack.reply"]
    assert len(reply) == 1 and reply[0].address == "8613800138000" and f"已确认告警{aid}" in reply[0].text
    assert am.handle_incoming(Incoming("+8613800138000", f"ACK {aid}", T0 + 800, "out")) == (
        "already acknowledged or resolved")


@pytest.mark.parametrize("text", ["1", "收到", "确认", "OK", "ack"])
def test_short_reply_acknowledges_latest_alarm_sent_to_that_phone(tmp_path: Path, text: str) -> None:
    am, j, _clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600), ev("fire", 600, key="z1/s1/other")])
    latest = max(a.id for a in j.alerts.find())
    assert am.handle_incoming(Incoming("13800138000", text, T0 + 700, "out")) == "acknowledged"
    assert j.alerts.get(latest).state == "acknowledged"  # type: ignore[union-attr]


def test_chatter_that_starts_with_a_number_acknowledges_nothing(tmp_path: Path) -> None:
    """`2号库门已关` ("room 2's door is closed") acknowledged alarm 2 and stopped its escalation, and `1。` (an IME adds
    the full stop) named alarm 1 instead of the latest: a number counts alone or after an ACK word only."""
    am, j, _clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600), ev("fire", 600, key="z1/s1/other")])
    first, latest = sorted(a.id for a in j.alerts.find())
    for text in (f"{latest}号库门已关", f"{first}0分钟后到", f"{first} 号库"):
        assert am.handle_incoming(Incoming("+8613800138000", text, T0 + 700, "out")) == "not an acknowledgement", text
    assert {a.state for a in j.alerts.find()} == {"firing"}
    assert am.handle_incoming(Incoming("+8613800138000", "1。", T0 + 700, "out")) == "acknowledged"
    assert [a.id for a in j.alerts.find() if a.state == "acknowledged"] == [latest]
    assert am.handle_incoming(Incoming("+8613800138000", f"#{first}", T0 + 700, "out")) == "acknowledged"


def test_unknown_sender_and_chatter_change_nothing(tmp_path: Path) -> None:
    am, j, _clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600)])
    assert am.handle_incoming(Incoming("+8613312345678", "ACK 1", T0, "out")) == "unknown sender"
    assert am.handle_incoming(Incoming("+8613800138000", "明天几点来？", T0, "out")) == "not an acknowledgement"
    assert j.alerts.find()[0].state == "firing"
    rows = j.read("SELECT sender, outcome FROM incoming ORDER BY id")
    assert rows == [("+8613312345678", "unknown sender"), ("+8613800138000", "not an acknowledgement")]


def test_failed_channel_falls_back_once_per_channel(tmp_path: Path) -> None:
    am, j, clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600)])
    flaky, backup = Flaky(), ConsoleNotifier(ConsoleConfig(id="backup", type="console"), None, out=io.StringIO())
    d = Dispatcher(j, {"out": flaky, "backup": backup}, am.stats, am.outbox_ready, clock)
    asyncio.run(d.drain())
    assert am.outbox_ready.is_set()  # the run loop drains again at once: the fallback goes out now
    asyncio.run(d.drain())
    first, second = j.outbox.find()
    assert (first.notifier, first.state) == ("out", "failed")
    assert (second.notifier, second.state, second.text) == ("backup", "sent", first.text)
    assert len(backup.sent) == 1 and flaky.sent == []


def test_message_left_sending_is_not_resent_on_same_channel(tmp_path: Path) -> None:
    am, j, clock = esc_manager(tmp_path)
    am.apply([ev("fire", 600)])
    (row,) = j.outbox.find()
    assert j.outbox.claim(row.id)  # the daemon died right after handing it to the modem
    backup = ConsoleNotifier(ConsoleConfig(id="backup", type="console"), None, out=io.StringIO())
    flaky = Flaky()
    flaky.fail = False
    d = Dispatcher(Journal(tmp_path / "esc.db"), {"out": flaky, "backup": backup}, am.stats, am.outbox_ready, clock)
    assert d.recover() == 1
    asyncio.run(d.drain())
    states = [(o.notifier, o.state) for o in j.outbox.find()]
    assert states == [("out", "unknown"), ("backup", "sent")] and flaky.sent == []


def test_last_channel_retries_then_gives_up(tmp_path: Path, config: AppConfig) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("fire", 600)])
    clock = ManualClock(T0 + 600)
    d = Dispatcher(j, {"out": Flaky()}, am.stats, am.outbox_ready, clock, retry_after=10, max_attempts=3)
    for _ in range(5):
        asyncio.run(d.drain())
        clock.advance(1000)
    (row,) = j.outbox.find()
    assert (row.state, row.attempts) == ("failed", 3)


class Refusing(Flaky):
    def __init__(self, *, retryable: bool, maybe_sent: bool) -> None:
        super().__init__()
        self.retryable, self.maybe_sent = retryable, maybe_sent

    async def send(self, message: Message) -> str | None:
        raise NotifierError("cloud:aliyun", "refused", retryable=self.retryable, maybe_sent=self.maybe_sent)


@pytest.mark.parametrize(("retryable", "maybe_sent", "state"), [(False, False, "failed"), (True, True, "unknown")])
def test_non_retryable_and_maybe_sent_are_not_retried_on_the_same_channel(
    config: AppConfig, tmp_path: Path, retryable: bool, maybe_sent: bool, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    am, j = manager(config, tmp_path)
    am.apply([ev("fire", 600)])
    clock = ManualClock(T0 + 600)
    ch = Refusing(retryable=retryable, maybe_sent=maybe_sent)
    d = Dispatcher(j, {"out": ch}, am.stats, am.outbox_ready, clock)
    for _ in range(3):
        asyncio.run(d.drain())
        clock.advance(3600)
    (row,) = j.outbox.find()
    assert (row.state, row.attempts) == (state, 1)
    assert "will retry" not in caplog.text  # the log said so for `unknown`, and it never was retried
    if maybe_sent:
        assert f"message {row.id} to zhang via out failed (attempt 1): cloud:aliyun: refused — it may have been " \
               "sent; not resending on this channel" in caplog.text


@pytest.mark.asyncio
async def test_dispatcher_ends_when_cancelled_as_it_is_woken(config: AppConfig, tmp_path: Path) -> None:
    """Daemon.stop() cancels the dispatcher. A wake-up in the same loop pass (a reply or a report just stored) made
    Python 3.11's asyncio.wait_for swallow the cancel: the dispatcher ran on and stop() waited for it forever."""
    am, j = manager(config, tmp_path)
    d = Dispatcher(j, {"out": ConsoleNotifier(ConsoleConfig(id="out", type="console", stream="log"))}, am.stats,
                   am.outbox_ready, ManualClock(T0))
    task = asyncio.create_task(d.run())
    for _ in range(500):  # until it sleeps on the event (bounded)
        await asyncio.sleep(0.01)
        if am.outbox_ready._waiters:  # type: ignore[attr-defined]
            break
    assert am.outbox_ready._waiters, "the dispatcher never went to sleep"  # type: ignore[attr-defined]
    am.outbox_ready.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled(), "the cancel was swallowed: the dispatcher is still running"


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
