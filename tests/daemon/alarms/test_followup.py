"""The HACCP follow-up of an alarm: acknowledge with a comment, corrective action, a manager's close, and an
acknowledged alarm that keeps going pages again."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.alarms.followup import CommentRequired, NoSuchAlarm, WorkflowError
from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import RuleEvent
from daemon.api.views import alert_json
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.ports.notify import Incoming
from daemon.ports.stats import Stats
from daemon.reports.compliance import compliance, to_csv, to_html
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL, make_config

T0 = 1_700_000_000.0


def ev(action: str, ts: float, value: float = 9.0) -> RuleEvent:
    return RuleEvent(action, "z1/s1/temp_high", "z1", "s1", "temp_high", "warning", T0 + ts, T0, value, 8.0, value)  # type: ignore[arg-type]


def fired(tmp_path: Path, extra: str = "") -> tuple[AlertManager, Journal, ManualClock, int]:
    cfg = make_config(tmp_path, MINIMAL + extra)
    clock = ManualClock(T0 + 600)
    j = Journal(tmp_path / "f.db")
    am = AlertManager(cfg, j, clock, Stats())
    am.apply([ev("pending", 0), ev("fire", 600)])
    return am, j, clock, j.alerts.find()[0].id


def reading(value: float, ts: float) -> Reading:
    return Reading("t1", "z1", "s1", Quantity.TEMPERATURE, value, T0 + ts)


def test_acknowledge_needs_a_comment_by_default(tmp_path: Path) -> None:
    am, j, _, aid = fired(tmp_path)
    with pytest.raises(CommentRequired):
        am.acknowledge(aid, "zhang", None)
    with pytest.raises(CommentRequired):
        am.acknowledge(aid, "zhang", "   ")
    assert j.alerts.get(aid).state == "firing"  # type: ignore[union-attr]
    assert am.acknowledge(aid, "zhang", "门没关好，已关门") is not None


def test_a_site_can_allow_an_acknowledgement_without_comment(tmp_path: Path) -> None:
    am, _, _, aid = fired(tmp_path, "alarms: {ack_comment_required: false}\n")
    row = am.acknowledge(aid, "zhang", None)
    assert row is not None and row.state == "acknowledged"


def test_sms_ack_without_words_is_its_own_comment(tmp_path: Path) -> None:
    am, j, clock, aid = fired(tmp_path)
    outcome = am.handle_incoming(Incoming("+8613800138000", f"ACK {aid}", clock.now(), "out"))
    assert outcome == "acknowledged"
    assert j.alerts.events(aid)[-1][1:] == ("acknowledged", "zhang (SMS +8613800138000)", f"ACK {aid}")


def test_corrective_action_then_close_is_the_audit_trail(tmp_path: Path) -> None:
    am, j, clock, aid = fired(tmp_path)
    with pytest.raises(WorkflowError, match="acknowledge it"):
        am.record_action(aid, "zhang", "moved", "移到2号库")
    am.acknowledge(aid, "zhang", "压缩机停了，在处理")
    with pytest.raises(CommentRequired):
        am.record_action(aid, "zhang", "burned", "x")
    with pytest.raises(CommentRequired):
        am.record_action(aid, "zhang", "moved", " ")
    clock.advance(300)
    am.record_action(aid, "zhang", "moved", "移到2号库，抽检3箱正常")
    with pytest.raises(WorkflowError, match="back in range"):
        am.close(aid, "wang", "ok")  # still out of range
    am.apply([ev("clear", 1800, 7.0)])
    clock.advance(600)
    row = am.close(aid, "wang", "复核无误")
    assert row.closed == clock.now() and row.closed_by == "wang" and row.state == "resolved"
    with pytest.raises(WorkflowError, match="already closed"):
        am.close(aid, "wang", None)
    with pytest.raises(WorkflowError, match="closed"):
        am.record_action(aid, "zhang", "other", "late note")
    with pytest.raises(NoSuchAlarm):
        am.close(999, "wang", None)
    trail = [(st, who, c) for _, st, who, c in j.alerts.events(aid)]
    assert trail[-4:] == [("acknowledged", "zhang (web)", "压缩机停了，在处理"),
                          ("corrective_action", "zhang", "moved: 移到2号库，抽检3箱正常"),
                          ("resolved", "system", None), ("closed", "wang", "复核无误")]
    (x,) = j.alerts.actions(aid)
    assert (x.ts, x.who, x.kind, x.text) == (T0 + 900, "zhang", "moved", "移到2号库，抽检3箱正常")


def test_close_needs_a_corrective_action(tmp_path: Path) -> None:
    am, _, _, aid = fired(tmp_path)
    am.apply([ev("clear", 1800, 7.0)])  # fired and ended before anyone acknowledged
    with pytest.raises(WorkflowError, match="no corrective action"):
        am.close(aid, "wang", None)
    am.record_action(aid, "li", "kept_after_check", "抽检果温7℃，正常")
    assert am.close(aid, "wang", None).closed is not None


def test_report_action_column_shows_the_workflow(tmp_path: Path) -> None:
    am, j, _, aid = fired(tmp_path)
    am.acknowledge(aid, "zhang", "在处理")
    am.record_action(aid, "zhang", "discarded", "烂果20kg销毁")
    am.apply([ev("clear", 1800, 7.0)])
    am.close(aid, "wang", "复核")
    rep = compliance(j, am.cfg, "z1", T0 - 3600, T0 + 7200, now=T0 + 7200)
    page = to_html(rep, "zh-CN")
    assert "在处理 / 已销毁: 烂果20kg销毁 (zhang) / 已关闭 (wang): 复核" in page
    assert "discarded: 烂果20kg销毁 (zhang) | closed (wang): 复核" in to_csv(rep, "en")


def test_acknowledged_room_that_keeps_warming_pages_again(tmp_path: Path) -> None:
    am, j, clock, aid = fired(tmp_path)
    j.readings.append([reading(9.0, 600)])
    am.acknowledge(aid, "zhang", "在处理")
    assert j.alerts.get(aid).ack_value == 9.0  # type: ignore[union-attr]
    sent = len(j.outbox.find())
    j.readings.append([reading(10.5, 900)])  # 1.5 °C worse: below the 2 °C default
    clock.advance(300)
    assert am.escalate() == [] and j.alerts.get(aid).state == "acknowledged"  # type: ignore[union-attr]
    j.readings.append([reading(11.2, 1200)])
    clock.advance(300)
    (row,) = am.escalate()
    assert row.state == "firing" and row.reescalated == clock.now()
    assert j.alerts.events(aid)[-1][1:] == ("reescalated", "system", "reescalate.rise|then=9.0|now=11.2")
    shown = alert_json(j.alerts.get(aid), "zh-CN")  # type: ignore[arg-type]  # what the page and API show
    assert shown["state"] == "firing" and shown["reescalated_text"] == "确认后仍恶化"
    new = sorted(j.outbox.find(), key=lambda m: m.id)[sent:]
    assert [m.msg_key for m in new] == ["alert.reescalated"]
    assert new[0].text.startswith("【告警未解除】测试冷库1号库温度过高告警") and "现11.2" in new[0].text
    assert len(new[0].text) <= 70
    assert am.acknowledge(aid, "zhang", "第二次确认，维修已到") is not None  # acknowledged anew, with a comment


def test_acknowledged_too_long_pages_again(tmp_path: Path) -> None:
    am, j, clock, aid = fired(tmp_path, "alarms: {reescalate_after: 30m, reescalate_rise: null}\n")
    am.acknowledge(aid, "zhang", "在处理")
    clock.advance(29 * 60)
    assert am.escalate() == []
    clock.advance(60)
    (row,) = am.escalate()
    assert row.state == "firing"
    assert j.alerts.events(aid)[-1][3] == "reescalate.time|minutes=30"
