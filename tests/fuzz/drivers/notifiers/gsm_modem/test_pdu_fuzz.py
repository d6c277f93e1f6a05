"""The SMS PDU codec against generated PDUs, and the notifier's handling of what it cannot decode.

`pdu.decode` gets arbitrary hex, and SMS-DELIVER / SMS-STATUS-REPORT PDUs built field by field then
truncated or with a byte overwritten (wrong address, UDL and UDH lengths, odd UCS2 byte counts, 8- and
16-bit concatenation headers with any numbers): it returns a message whose every text is plain Unicode,
or raises `PduError`, nothing else. Through the notifier, a stored message or a `+CDS` report it cannot
decode is counted (`bad_input`) and logged naming the port and SIM index; a readable reply reaches the
core. And `encode_submit` -> `decode` gives the text back, GSM-7 and UCS2, multi-part included.
"""

from __future__ import annotations

import asyncio
import logging

from hypothesis import given
from hypothesis import strategies as st

from daemon.ports.notify import Incoming, NotifierContext
from drivers.notifiers.gsm_modem import GsmModemConfig, GsmModemNotifier, pdu
from tests.fuzz.budget import FUZZ
from tests.fuzz.drivers.notifiers.gsm_modem.scripted_port import PORT, ScriptedPort

GSM7_CHARS = [c for c in pdu.GSM7_BASIC if c != "\x1b"] + list(pdu.GSM7_EXT)
DCS = st.one_of(st.sampled_from([0x00, 0x04, 0x08, 0x0C, 0x10, 0x18, 0xC0, 0xD8, 0xE0, 0xF0, 0xF4]),
                st.integers(0, 255))


def semi_octets(digits: str) -> bytes:
    digits += "F" * (len(digits) % 2)
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2)))


@st.composite
def address(draw: st.DrawFn) -> bytes:
    """TP-OA / TP-RA: a number (international or not), an alphanumeric sender, or lengths that lie."""
    digits = draw(st.text("0123456789", min_size=0, max_size=20))
    toa = draw(st.sampled_from([0x91, 0x81, 0xA1, 0xD0, 0x50]) | st.integers(0, 255))
    body = semi_octets(digits) if toa & 0x70 != 0x50 else pdu.pack_septets(pdu.gsm7_septets(digits) or [])
    length = draw(st.sampled_from([len(digits), len(body) * 2]) | st.integers(0, 255))
    return bytes([length, toa]) + body


@st.composite
def smsc(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["none", "number", "raw"]))
    if kind == "none":
        return b"\x00"
    if kind == "number":
        return pdu.encode_smsc("+" + draw(st.text("0123456789", min_size=3, max_size=15)))
    raw = draw(st.binary(max_size=12))
    return bytes([draw(st.integers(0, 255))]) + raw


def bcd(n: int) -> int:
    return (n % 10) << 4 | n // 10


TIMESTAMP = st.one_of(
    st.builds(lambda y, mo, d, h, mi, s, tz: bytes([bcd(y), bcd(mo), bcd(d), bcd(h), bcd(mi), bcd(s), tz]),
              st.integers(0, 99), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59),
              st.integers(0, 59), st.integers(0, 255)),
    st.binary(min_size=7, max_size=7),
)


@st.composite
def user_data(draw: st.DrawFn) -> tuple[bool, int, bytes]:
    """(UDHI, UDL, UD): concatenation headers of any numbers and lengths, GSM-7 / UCS2 / random bodies."""
    header = b""
    if draw(st.booleans()):
        elements = draw(st.lists(st.one_of(
            st.builds(lambda r, t, s: bytes([0x00, 3, r, t, s]), st.integers(0, 255), st.integers(0, 255),
                      st.integers(0, 255)),
            st.builds(lambda r, t, s: bytes([0x08, 4, r >> 8, r & 0xFF, t, s]), st.integers(0, 0xFFFF),
                      st.integers(0, 255), st.integers(0, 255)),
            st.builds(lambda i, d: bytes([i, len(d)]) + d, st.integers(0, 255), st.binary(max_size=6)),
            st.binary(min_size=1, max_size=4),  # an element cut short
        ), max_size=3))
        header = b"".join(elements)
        header = bytes([draw(st.sampled_from([len(header)]) | st.integers(0, 255))]) + header
    kind = draw(st.sampled_from(["gsm7", "ucs2", "ucs2-odd", "raw"]))
    text = draw(st.text(max_size=80))
    if kind == "gsm7":
        septets = pdu.gsm7_septets("".join(c for c in text if c in GSM7_CHARS)) or []
        body, udl = pdu.pack_septets(septets), len(septets) + (len(header) * 8 + 6) // 7
    elif kind.startswith("ucs2"):
        body = text.encode("utf-16-be")
        body = body[:-1] if kind == "ucs2-odd" and body else body
        udl = len(header) + len(body)
    else:
        body = draw(st.binary(max_size=140))
        udl = len(header) + len(body)
    udl = draw(st.sampled_from([udl, 0, 255]) | st.integers(0, 255)) if draw(st.booleans()) else udl
    return bool(header), udl & 0xFF, header + body


@st.composite
def deliver(draw: st.DrawFn) -> bytes:
    udhi, udl, ud = draw(user_data())
    fo = draw(st.integers(0, 255)) & ~0x43 | (0x40 if udhi else 0)
    return (draw(smsc()) + bytes([fo]) + draw(address()) + bytes([draw(st.integers(0, 255)), draw(DCS)])
            + draw(TIMESTAMP) + bytes([udl]) + ud)


@st.composite
def status_report(draw: st.DrawFn) -> bytes:
    fo = draw(st.integers(0, 255)) & ~0x03 | 0x02
    tail = draw(st.binary(max_size=6))  # optional PI / PID / DCS / UDL fields, or junk
    return (draw(smsc()) + bytes([fo, draw(st.integers(0, 255))]) + draw(address()) + draw(TIMESTAMP)
            + draw(TIMESTAMP) + bytes([draw(st.sampled_from([0x00, 0x20, 0x40, 0x65]) | st.integers(0, 255))]) + tail)


@st.composite
def mangled(draw: st.DrawFn, pdus: st.SearchStrategy[bytes]) -> bytes:
    """A PDU as the wire may deliver it: whole, cut short, or with one byte overwritten."""
    data = draw(pdus)
    how = draw(st.sampled_from(["whole", "cut", "byte"]))
    if how == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "byte" and data:
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    return data


PDU_HEX = st.one_of(
    mangled(deliver()).map(lambda b: b.hex().upper()),
    mangled(status_report()).map(lambda b: b.hex().upper()),
    st.binary(max_size=120).map(bytes.hex),
    st.text("0123456789ABCDEFabcdef", max_size=120),  # odd lengths too
    st.text(max_size=40),
)


def plain(text: str) -> None:
    """Text the core can store and print: no lone surrogate (SQLite and the log encode UTF-8)."""
    text.encode("utf-8")


def check_decoded(msg: pdu.Deliver | pdu.Submit | pdu.StatusReport) -> None:
    if isinstance(msg, pdu.StatusReport):
        plain(msg.recipient)
        assert 0 <= msg.reference <= 255 and 0 <= msg.status <= 255
        msg.timestamp.timestamp()
        msg.discharge.isoformat()
        return
    plain(msg.text)
    plain(msg.sender if isinstance(msg, pdu.Deliver) else msg.number)
    if isinstance(msg, pdu.Deliver):
        msg.timestamp.timestamp()
    if msg.concat is not None:
        assert 0 <= msg.concat.reference <= 0xFFFF and 0 <= msg.concat.total <= 255 and 0 <= msg.concat.seq <= 255


@FUZZ
@given(PDU_HEX)
def test_decode_gives_a_message_or_pdu_error(pdu_hex: str) -> None:
    try:
        msg = pdu.decode(pdu_hex)
    except pdu.PduError as exc:
        assert str(exc)
        return
    check_decoded(msg)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def notifier(ctx: NotifierContext) -> tuple[GsmModemNotifier, ScriptedPort]:
    cfg = GsmModemConfig.model_validate({"id": "sms", "type": "gsm_modem", "port": PORT})
    n = GsmModemNotifier(cfg, ctx)
    port = ScriptedPort(lambda _cmd: [b"\r\nOK\r\n"], on_urc=lambda _u: None)
    n._port = port  # type: ignore[assignment]
    n._ready.set()
    return n, port


def test_stored_messages_and_reports_reach_the_core_or_are_counted_and_logged() -> None:
    capture = Capture()
    logger = logging.getLogger("coldchain.notify.gsm_modem")
    logger.addHandler(capture)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    loop = asyncio.new_event_loop()

    @FUZZ
    @given(PDU_HEX, st.integers(1, 255), st.booleans())
    def run(pdu_hex: str, index: int, as_report: bool) -> None:
        got: list[Incoming] = []
        reports: list[tuple[str, bool, str]] = []
        n, port = notifier(NotifierContext(on_incoming=got.append,
                                           on_delivery=lambda r, ok, d: reports.append((r, ok, d))))
        capture.records.clear()
        with port.virtual_time():
            if as_report:  # a +CDS line and its PDU
                loop.run_until_complete(n._on_urc(pdu_urc(pdu_hex)))
            else:  # a message stored on the SIM, read with AT+CMGR / AT+CMGL
                loop.run_until_complete(n._process_stored(index, pdu_hex))
        for m in got:
            plain(m.text)
            plain(m.sender)
            assert m.channel == "sms"
        for _ref, _ok, detail in reports:
            plain(detail)
        try:
            decoded: object = pdu.decode(pdu_hex)
        except pdu.PduError:
            decoded = None
        if decoded is None:
            assert n.counts["bad_input"] == 1, "an undecodable PDU was not counted"
            said = [r.getMessage() for r in capture.records if r.levelno >= logging.WARNING]
            assert any(PORT in s and (as_report or f"index {index}" in s) for s in said), said
            if not as_report:
                assert f"AT+CMGD={index}" in port.commands  # deleted, so it cannot fill the SIM
        elif isinstance(decoded, pdu.Deliver) and not as_report and (decoded.concat is None
                                                                     or decoded.concat.total <= 1):
            assert [m.text for m in got] == [decoded.text]

    try:
        run()
    finally:
        loop.close()
        logger.removeHandler(capture)
        logger.setLevel(old_level)


def pdu_urc(pdu_hex: str):  # type: ignore[no-untyped-def]
    from drivers.notifiers.gsm_modem.at import Urc

    return Urc(f"+CDS: {len(pdu_hex) // 2}", pdu_hex)


GSM7_TEXT = st.text(st.sampled_from(GSM7_CHARS), max_size=700)
ANY_TEXT = st.text(max_size=400) | st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
                                           | st.sampled_from(["℃", "，", "😀", "𠀀", "a", "{"]), max_size=300)


@FUZZ
@given(st.one_of(GSM7_TEXT, ANY_TEXT), st.integers(0, 255), st.booleans(), st.booleans())
def test_encode_then_decode_gives_the_text_back(text: str, reference: int, srr: bool, validity: bool) -> None:
    from datetime import timedelta

    try:
        parts = pdu.encode_submit("+8613800138000", text, reference=reference, request_status_report=srr,
                                  validity=timedelta(hours=24) if validity else None)
    except pdu.PduError:
        assert len(text) > 255 * 67 // 2, "refused a text that fits in 255 parts"
        return
    gsm7 = pdu.gsm7_septets(text) is not None
    decoded = [pdu.decode(p.hex) for p in parts]
    texts = []
    for seq, (part, msg) in enumerate(zip(parts, decoded, strict=True), start=1):
        assert isinstance(msg, pdu.Submit)
        assert msg.number == "+8613800138000" and msg.status_report is srr
        assert msg.dcs == (pdu.DCS_GSM7 if gsm7 else pdu.DCS_UCS2)
        assert part.tpdu_length == len(bytes.fromhex(part.hex)) - 1  # no SMSC: one 00 octet before the TPDU
        if len(parts) == 1:
            assert msg.concat is None
        else:
            assert msg.concat == pdu.Concat(reference, len(parts), seq)
        texts.append(msg.text)
    assert "".join(texts) == text
    if gsm7:
        assert len(parts) == 1 or all(len(pdu.gsm7_septets(t) or []) <= pdu.GSM7_PART for t in texts)
        assert len(parts) > 1 or len(pdu.gsm7_septets(text) or []) <= pdu.GSM7_SINGLE
    else:
        assert len(parts) == 1 or all(len(t.encode("utf-16-be")) // 2 <= pdu.UCS2_PART for t in texts)
