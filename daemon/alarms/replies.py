"""Reading SMS replies: which phone number is whose, and whether a reply acknowledges an alarm (and which).

Pure text work; `AlertManager.handle_incoming` (`lifecycle.py`) acts on the answer. People reply
from whatever phone they have: `ACK 17`, `ack17`, `确认 17`, `收到17 门已关`, a bare `1`, in
full-width IME mode (`ＡＣＫ　１７`), with or without the country code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACK_RX = re.compile(r"^\s*(?:ack|ok|确认|收到|已收到|好)?\s*[#＃]?\s*(\d{1,9})?\s*[。.!！,，:：]?\s*(.*)$", re.I | re.S)
ACK_WORD = re.compile(r"^\s*(?:ack|ok|确认|收到|已收到|好)(?:\b|(?=[#＃\d]))", re.I)
BARE_NUMBER = re.compile(r"^\s*[#＃]?\s*(\d{1,9})\s*[。.!！]?\s*$")
# A phone's IME in full-width mode types ＡＣＫ　１７: letters, digits and the space folded one to one for matching
FULL_WIDTH = {0x3000: " ", **{c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if chr(c - 0xFEE0).isalnum()}}


@dataclass(frozen=True, slots=True)
class Reply:
    """What an SMS reply asks for: `alert_id` None means the latest open alarm sent to the sender."""

    is_ack: bool
    alert_id: int | None = None
    comment: str | None = None


def parse_reply(text: str) -> Reply:
    """`ACK 17`, `ack17`, `确认 17`, `收到17 门已关` name alarm 17 (what follows is the comment); `ACK`, `收到`,
    `确认`, `OK` or a bare `1` mean the latest alarm; a reply that is only a number (`17`, `#17`) names that alarm.
    Anything else is chatter, including text that merely starts with a number (`10分钟后到`)."""
    folded = text.translate(FULL_WIDTH)  # same length: the comment is cut from the text as the person typed it
    if bare := BARE_NUMBER.match(folded):
        number = int(bare.group(1))
        return Reply(True, None if number == 1 else number)  # "1" is the plain-phone shortcut for "the latest"
    if not ACK_WORD.match(folded):
        return Reply(False)
    m = ACK_RX.match(folded)
    assert m is not None  # every part of it is optional
    return Reply(True, int(m.group(1)) if m.group(1) else None, text[m.start(2):].strip() or None)


def phone_key(number: str) -> str:
    """Comparable form of a phone number: +86 138..., 0086138..., 86138... and 138... match."""
    digits = re.sub(r"\D", "", number)
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        digits = "86" + digits
    return digits
