"""SMS replies: a reply from a contact acknowledges the alarm it names (or the latest sent to that phone); chatter and strangers change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.ports.notify import Incoming
from tests.daemon.alarms.test_lifecycle import T0, esc_manager, ev


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
