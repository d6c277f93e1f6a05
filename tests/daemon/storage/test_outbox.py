"""The outbox repository: queued in the caller's transaction, claimed once, delivery reports on the newest match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.storage.alerts import NewAlert
from daemon.storage.journal import Journal


def message(alert_id: int | None, contact: str = "zhang", address: str = "+8613800138000", notifier: str = "sms",
            key: str = "alert.temp_high", fallbacks: str | None = "cloud") -> tuple[Any, ...]:
    return (alert_id, 100.0, contact, address, notifier, "zh-CN", "text", fallbacks, key, "{}")


def journal_with_alarm(tmp_path: Path) -> tuple[Journal, int]:
    j = Journal(tmp_path / "j.db")
    with j.transaction() as tx:
        aid = j.alerts.insert(tx, NewAlert("k", "z1", "s1", "temp_high", "warning", 1.0, 9.0, 8.0, 9.0, None), "firing")
    return j, aid


def test_claim_once_then_finish(tmp_path: Path) -> None:
    j, aid = journal_with_alarm(tmp_path)
    with j.transaction() as tx:
        j.outbox.enqueue(tx, *message(aid))
    (row,) = j.outbox.due(100.0)
    assert (row.state, row.attempts, row.fallbacks, row.msg_key) == ("pending", 0, "cloud", "alert.temp_high")
    assert j.outbox.claim(row.id) and not j.outbox.claim(row.id)  # a second claim finds it taken
    j.outbox.finish(row.id, "sent", None, "ref-7", None)
    (sent,) = j.outbox.find(state="sent")
    assert (sent.attempts, sent.ref) == (1, "ref-7") and sent.sent_at is not None
    assert j.outbox.count_by_state() == [("sent", 1)]


def test_retry_time_and_settle(tmp_path: Path) -> None:
    j, aid = journal_with_alarm(tmp_path)
    with j.transaction() as tx:
        j.outbox.enqueue(tx, *message(aid))
    (row,) = j.outbox.find()
    with j.transaction() as tx:
        j.outbox.settle(tx, row.id, "pending", "no network", 500.0)
    assert j.outbox.due(499.0) == [] and [r.id for r in j.outbox.due(500.0)] == [row.id]
    with j.transaction() as tx:
        j.outbox.shift_timers(tx, 100.0)
    assert j.outbox.due(599.0) == []
    with j.transaction() as tx:
        j.outbox.mark_unknown(tx, row.id)
    assert j.outbox.find(state="unknown")[0].last_error == "no network"


def test_delivery_report_lands_on_the_newest_sent_message_with_that_reference(tmp_path: Path) -> None:
    j, aid = journal_with_alarm(tmp_path)
    with j.transaction() as tx:
        j.outbox.enqueue(tx, *message(aid))
        j.outbox.enqueue(tx, *message(aid))
    old, new = j.outbox.find()
    for row in (old, new):
        j.outbox.claim(row.id)
        j.outbox.finish(row.id, "sent", None, "12", None)  # modem references wrap: both are 12
    assert j.outbox.mark_delivered("sms", "12", True, "") == new.id
    assert j.outbox.delivery(new.id) == (1, None) and j.outbox.delivery(old.id) == (None, None)
    assert j.outbox.mark_delivered("sms", "99", False, "x") is None


def test_who_was_told_about_an_alarm(tmp_path: Path) -> None:
    j, aid = journal_with_alarm(tmp_path)
    with j.transaction() as tx:
        j.outbox.enqueue(tx, *message(aid))
        j.outbox.enqueue(tx, *message(aid, "wang", "13900139000", "cloud", fallbacks=None))
        j.outbox.enqueue(tx, *message(aid, key="resolve"))
        j.outbox.enqueue(tx, *message(aid, "liu", "+8613700137000", key="ack.notice"))
        told = j.outbox.told(tx, aid)
    assert told == [("zhang", "+8613800138000", "sms", "zh-CN", "cloud"), ("wang", "13900139000", "cloud", "zh-CN",
                                                                            None)]
    assert j.outbox.alerts_told(sender_key="8613900139000", phone_key=lambda a: "86" + a[-11:]) == [aid]
    assert j.outbox.alerts_told(sender_key="nobody", phone_key=str) == []


def test_replies_are_kept_with_what_they_did(tmp_path: Path) -> None:
    j, aid = journal_with_alarm(tmp_path)
    with j.transaction() as tx:
        j.outbox.record_incoming(tx, 5.0, "sms", "+8613800138000", "ACK", aid, "acknowledged")
    assert j.read("SELECT ts, channel, sender, text, alert_id, outcome FROM incoming") == [
        (5.0, "sms", "+8613800138000", "ACK", aid, "acknowledged")]
