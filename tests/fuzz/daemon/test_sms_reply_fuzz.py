"""SMS replies (the acknowledgement path) against generated texts and senders.

`parse_reply` gets the documented forms (`ACK 17`, `ack17`, `确认 17`, `收到17 门已关`, `ACK`, `收到`, `OK`, a bare
`1`, a bare number, in any case, with full-width digits and IME punctuation), chatter that starts with a number,
and random Unicode: the documented forms mean what docs/alarms.md says, chatter acknowledges nothing, nothing
raises. Through `AlertManager.handle_incoming` with a real journal and random senders (the contact's number in
every written form, the manager, strangers, carrier short codes): every reply is stored in `incoming` with its
sender and outcome, counted and logged naming the sender, and only an alarm told to that sender is acknowledged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.replies import parse_reply, phone_key
from daemon.alarms.rules import RuleEvent
from daemon.ports.clock import ManualClock
from daemon.ports.notify import Incoming
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from tests.conftest import make_config
from tests.daemon.alarms.test_lifecycle import ESCALATION, T0
from tests.fuzz.budget import CONFIG_FUZZ, FUZZ

WORDS = ["ACK", "ack", "Ack", "OK", "ok", "确认", "收到", "已收到", "好", "ＡＣＫ", "ａｃｋ", "ＯＫ"]
SEPS = ["", " ", "  ", "#", " #", "＃", "\u3000", "\t"]
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
COMMENTS = st.one_of(st.just(""), st.sampled_from([" 门没关好，已关", "，马上去", " compressor reset", "。", "!"]),
                     st.text(max_size=20).map(lambda t: " " + t))
OUTCOMES = {"unknown sender", "not an acknowledgement", "no matching alarm", "acknowledged",
            "already acknowledged or resolved"}


@st.composite
def number_text(draw: st.DrawFn) -> tuple[int, str]:
    n = draw(st.integers(0, 10**9 - 1))
    text = str(n)
    return n, text.translate(FULLWIDTH) if draw(st.booleans()) else text


@st.composite
def documented(draw: st.DrawFn) -> tuple[str, int | None]:
    """A documented acknowledgement and the alarm it names (None: the latest sent to the sender)."""
    kind = draw(st.sampled_from(["word+number", "word", "bare 1", "bare number"]))
    lead = draw(st.sampled_from(["", " ", "\n"]))
    if kind == "word+number":
        n, digits = draw(number_text())
        return f"{lead}{draw(st.sampled_from(WORDS))}{draw(st.sampled_from(SEPS))}{digits}{draw(COMMENTS)}", n
    if kind == "word":
        word = draw(st.sampled_from(WORDS))
        return f"{lead}{word}{draw(st.sampled_from(['', ' ', '。', '!', '！', ' 收到了', '，马上去']))}", None
    if kind == "bare 1":
        return f"{lead}{draw(st.sampled_from(['1', '#1', '１']))}{draw(st.sampled_from(['', '。', '.', '!', ' ']))}", None
    n, digits = draw(number_text())
    return f"{lead}{draw(st.sampled_from(['', '#', '＃']))}{digits}{draw(st.sampled_from(['', '。', ' ']))}", (
        None if n == 1 else n)


CHATTER = st.one_of(
    st.builds(lambda n, t: f"{n}{t}", st.integers(0, 10**6),
              st.sampled_from(["号库门已关", "分钟后到", " 号库", "点再说", "°C 正常吗", "x"])),
    st.sampled_from(["好的", "okay", "明天几点来？", "谁在值班", "acknowledged", "收到了吗", "OKAY!", "1号库温度高"]),
)
REPLIES = st.one_of(documented().map(lambda d: d[0]), CHATTER, st.text(max_size=60),
                    st.text(st.sampled_from(list("ACKOack确认收到好1７#＃ 。!\n0123456789")), max_size=12))


@FUZZ
@given(documented())
def test_documented_forms_acknowledge_what_they_name(case: tuple[str, int | None]) -> None:
    text, named = case
    reply = parse_reply(text)
    assert reply.is_ack, text
    assert reply.alert_id == named, text


@FUZZ
@given(CHATTER)
def test_chatter_that_starts_with_a_number_is_not_an_acknowledgement(text: str) -> None:
    assert not parse_reply(text).is_ack, text


@FUZZ
@given(REPLIES)
def test_any_reply_parses_without_error(text: str) -> None:
    reply = parse_reply(text)
    if not reply.is_ack:
        assert reply.alert_id is None and reply.comment is None
    assert reply.alert_id is None or 0 <= reply.alert_id < 10**9
    assert reply.comment is None or (reply.comment == reply.comment.strip() and reply.comment)


ZHANG = ["+8613800138000", "8613800138000", "008613800138000", "13800138000", "+86 138 0013 8000"]
SENDERS = st.one_of(st.sampled_from([*ZHANG, "+8613900139000", "+8613312345678", "10086", "95588", ""]),
                    st.text(max_size=16))


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_handle_incoming_stores_counts_and_logs_every_reply(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, ESCALATION)
    journal = Journal(tmp_path / "replies.db")
    clock = ManualClock(T0 + 600)
    am = AlertManager(cfg, journal, clock, Stats())
    capture = Capture()
    logger = logging.getLogger("coldchain.alerts")
    logger.addHandler(capture)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    fired = 0

    def fire() -> None:  # a new alarm for zhang (step 0 of the escalation), so there is always one to acknowledge
        nonlocal fired
        fired += 1
        am.apply([RuleEvent("fire", f"z1/s1/k{fired}", "z1", "s1", "temp_high", "warning", T0 + 600, T0, 9.0,  # type: ignore[arg-type]
                            8.0, 9.0)])

    fire()

    @CONFIG_FUZZ
    @given(SENDERS, REPLIES)
    def run(sender: str, text: str) -> None:
        if not any(a.state == "firing" for a in journal.alerts.find(limit=100_000)):
            fire()
        before = {a.id: a.state for a in journal.alerts.find(limit=100_000)}
        told_here = set(journal.outbox.alerts_told(sender_key=phone_key(sender), phone_key=phone_key))
        stored = journal.read("SELECT COUNT(*) FROM incoming")[0][0]
        capture.messages.clear()
        outcome = am.handle_incoming(Incoming(sender, text, clock.now(), "sms"))
        assert outcome in OUTCOMES
        last = journal.read("SELECT sender, text, outcome, alert_id FROM incoming ORDER BY id DESC LIMIT 1")[0]
        assert journal.read("SELECT COUNT(*) FROM incoming")[0][0] == stored + 1
        assert last[:3] == (sender, text, outcome)
        assert any(f"SMS from {sender} via sms" in m and outcome in m for m in capture.messages), capture.messages
        after = {a.id: a.state for a in journal.alerts.find(limit=100_000)}
        changed = {aid for aid in before if after[aid] != before[aid]}
        if outcome == "acknowledged":
            assert changed == {last[3]} and after[last[3]] == "acknowledged" and last[3] in told_here
            assert parse_reply(text).is_ack
        else:
            assert not changed, (sender, text, outcome)
        if phone_key(sender) != phone_key(ZHANG[0]) and phone_key(sender) != phone_key("+8613900139000"):
            assert outcome == "unknown sender"

    try:
        run()
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
        journal.close()
    counted = sum(v for k, v in am.stats.snapshot().items() if k.startswith("incoming_"))
    assert counted == journal_rows(tmp_path / "replies.db")


def journal_rows(path: Path) -> int:
    j = Journal(path)
    try:
        return int(j.read("SELECT COUNT(*) FROM incoming")[0][0])
    finally:
        j.close()


@pytest.mark.parametrize(("text", "is_ack", "alert_id", "comment"), [
    ("ACK 17", True, 17, None), ("确认17", True, 17, None), ("收到", True, None, None), ("1", True, None, None),
    ("ack17 门没关好，已关", True, 17, "门没关好，已关"), ("ＡＣＫ　１７", True, 17, None), ("1。", True, None, None),
    ("10分钟后到", False, None, None), ("🙂", False, None, None), ("\x00", False, None, None), ("", False, None, None),
])
def test_examples(text: str, is_ack: bool, alert_id: int | None, comment: str | None) -> None:
    reply = parse_reply(text)
    assert (reply.is_ack, reply.alert_id, reply.comment) == (is_ack, alert_id, comment)
