"""The outbox dispatcher: retry with backoff, fallback once per channel, never resend what may have gone out."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from daemon.alarms.dispatcher import Dispatcher
from daemon.config.schema import AppConfig
from daemon.ports.clock import ManualClock
from daemon.ports.errors import NotifierError
from daemon.ports.notify import Message, Notifier
from daemon.storage.journal import Journal
from drivers.notifiers.console import ConsoleConfig, ConsoleNotifier
from tests.daemon.alarms.test_lifecycle import T0, esc_manager, ev, manager


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
        expected = (f"message {row.id} to zhang via out failed (attempt 1): cloud:aliyun: refused — it may have "
                    "been sent; not resending on this channel")
        assert expected in caplog.text


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
