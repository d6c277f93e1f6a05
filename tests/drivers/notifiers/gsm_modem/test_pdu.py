"""PDU encoding and decoding, byte for byte against the vectors in shared/PROTOCOLS.md section 3.2."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from drivers.notifiers.gsm_modem import pdu
from drivers.notifiers.gsm_modem.pdu import Concat, Deliver, StatusReport, Submit

CN8 = timezone(timedelta(hours=8))

# GENERATED vectors (python-gsmmodem-new 0.13.0, checked by an independent parser), PROTOCOLS.md 3.2
ALARM_1 = "【冷库告警】1号冷库温度12.5℃，超过上限8℃。回复ACK确认。"
ALARM_1_PDU = (
    "0021010D91683108108300F0000842301051B75E93544A8B663011003153F751B75E936E295EA600310032002E00352103FF0C"
    "8D858FC74E0A965000382103300256DE590D00410043004B786E8BA43002"
)
ALARM_2_PART2 = "理后回复ACK确认，未确认将每10分钟重复提醒并升级通知主管。"
ALARM_2_PDUS = [
    "00612A0D91683108108300F000088C0500032A0201301051B75E93544A8B6630110041533A003153F751B75E936E295EA600310032002E"
    "00352103FF0C8D858FC74E0A96500038002E00302103FF0C5DF263017EED003100355206949F30026E7F5EA60039003300250052004830"
    "028BF7503C73ED4EBA54587ACB537368C067E5523651B7673A7EC44E0E5E9395E85BC65C0160C551B5FF0C5904",
    "00612A0D91683108108300F00008440500032A02027406540E56DE590D00410043004B786E8BA4FF0C672A786E8BA45C066BCF0031003052"
    "06949F91CD590D63D091925E7653477EA7901A77E54E3B7BA13002",
]
ASCII_PDU = "0001020D91683108108300F0000022416650DA04C9DFEF760C44EDC564AEDA10E4C30D5D206919CECE8382C325"
ACK_DELIVER = "00040D91683108108300F00008421122010000230C00410043004B002065365230"


def as_submit(pdu_hex: str) -> Submit:
    """Decode a PDU that must be an SMS-SUBMIT."""
    msg = pdu.decode(pdu_hex)
    assert isinstance(msg, Submit)
    return msg


def alarm_2_text() -> str:
    """The 2-part alarm text, read back out of the vector (part 1 is 67 UCS2 units after the UDH)."""
    first = bytes.fromhex(ALARM_2_PDUS[0])[1 + 2 + 9 + 3 + 6 :].decode("utf-16-be")
    return first + ALARM_2_PART2


def test_single_ucs2_chinese_alarm_with_status_report() -> None:
    [out] = pdu.encode_submit("+8613800138000", ALARM_1, reference=1, request_status_report=True)
    assert out.hex == ALARM_1_PDU
    assert out.tpdu_length == 80  # AT+CMGS=80


def test_two_part_ucs2_alarm() -> None:
    text = alarm_2_text()
    assert len(text) == 67 + len(ALARM_2_PART2)
    parts = pdu.encode_submit("+8613800138000", text, reference=0x2A, request_status_report=True)
    assert [p.hex for p in parts] == ALARM_2_PDUS
    assert [p.tpdu_length for p in parts] == [154, 82]


def test_gsm7_ascii_alarm() -> None:
    [out] = pdu.encode_submit("+8613800138000", "ALARM room1 T=12.5C >8C. Reply ACK", reference=2)
    assert (out.hex, out.tpdu_length) == (ASCII_PDU, 44)


def test_python_gsmmodem_submit_vectors() -> None:
    """VERBATIM test_pdu.py vectors: UCS2 with an SMSC, GSM-7, relative validity 52 weeks (0xF4)."""
    [a] = pdu.encode_submit("+34616585119", "あ叶葉", smsc="+34646456456")
    assert a.hex == "07914346466554F601000B914316565811F9000806304253F68449"
    [b] = pdu.encode_submit("+27820001111", "Hello World!")
    assert b.hex == "0001000B917228001011F100000CC8329BFD065DDF72363904"
    [c] = pdu.encode_submit("+123456789", "世界您好！", validity=timedelta(weeks=52), smsc="+44000000000")
    assert c.hex == "07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01"


def test_python_gsmmodem_gsm7_concatenated_vector() -> None:
    """Three GSM-7 parts with fill bits after the UDH (TP-RD set, as in the library's test)."""
    text = (
        "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt ut labore et dolore "
        "magna aliqua.Ut enim ad minim veniam, quinostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo "
        "consequat.Duis aute irure dolor in reprehenderit in voluptate velit esse cillum doloe eu fugiat nulla pariatur."
        "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum"
    )
    parts = pdu.encode_submit("+15125551234", text, reject_duplicates=True)
    assert [p.hex for p in parts] == [
        "0045000B915121551532F40000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB741668FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE9683D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7DD",
        "0045000B915121551532F40000A0050003000302DE73BABC4E0695F165F9384D0FD3D36F37A8CE6687DBE337881D16BFE5E939C89D9EA741753A28CC4EC7EB6938A88C0795C3A0F1BBDD7E93DFA0F1DB3D2FC7EB61BA8B584FCF41E13ABD0C4ACBEBF23288FC66BFE5A0B41B242FC3E56574D94D2ECBD37450DA0DB2BFD975383D4C2F83EC65769A0E2ACFE765D038CD66D7DB20F29BFD2E83CA",
        "0045000B915121551532F400008C050003000303EA2073FD9C0ED341EE3A9B1D06C1C3F274985E97BB8AF871194E2FD7E5A079DA4D07BDC7E370791CA683C675789A1CA687E920F7DB0D82CBDF6972D94D6781E675371D947683C675363C0C8AD7D3A0B7D99C1EA7C32072795E96D7DD7450FBCD66A7E9A0B03BDD06A5C9A0F29C0E6287C56F79BD0D",
    ]
    assert "".join(as_submit(p.hex).text for p in parts) == text


def test_gsm7_alphabet_and_extension_table() -> None:
    assert pdu.gsm7_septets("{åΦΓΛΩΠΨΣΘ€}") == [27, 40, 15, 18, 19, 20, 21, 22, 23, 24, 25, 27, 101, 27, 41]
    assert pdu.pack_septets(pdu.gsm7_septets("a[]{}€") or []) == bytes([225, 13, 111, 227, 219, 160, 54, 169, 77, 25])
    assert pdu.gsm7_septets("12.5℃") is None  # one ℃ forces the whole message into UCS2


def test_ucs2_coding_of_the_library_vectors() -> None:
    [p] = pdu.encode_submit("+81", "はい")
    assert p.hex.endswith("04306F3044")
    assert pdu.split_text("あ叶葉") == (pdu.DCS_UCS2, ["あ叶葉"])


def test_gsm7_long_text_is_cut_at_153_septets_without_splitting_an_escape() -> None:
    text = "A" * 152 + "€" + "B" * 10
    dcs, parts = pdu.split_text(text)
    assert dcs == pdu.DCS_GSM7
    assert [len(p) for p in parts] == [152, 12]
    assert pdu.split_text("x" * 160)[1] == [pdu.gsm7_septets("x" * 160)]


def test_ucs2_long_text_never_splits_a_surrogate_pair() -> None:
    text = "冷" * 66 + "😀" + "库" * 5
    dcs, parts = pdu.split_text(text)
    assert dcs == pdu.DCS_UCS2
    assert parts == ["冷" * 66, "😀" + "库" * 5]
    encoded = pdu.encode_submit("+8613800138000", text, reference=7)
    decoded = [as_submit(p.hex) for p in encoded]
    assert "".join(d.text for d in decoded) == text
    assert [d.concat for d in decoded] == [Concat(7, 2, 1), Concat(7, 2, 2)]
    assert pdu.split_text("冷" * 70)[1] == ["冷" * 70]


def test_validity_period_relative() -> None:
    assert pdu.relative_validity(timedelta(hours=24)) == 167
    assert [pdu.relative_validity(d) for d in (timedelta(minutes=30), timedelta(hours=16), timedelta(days=3),
                                               timedelta(weeks=5))] == [5, 151, 169, 197]
    [p] = pdu.encode_submit("+8613800138000", "x", validity=timedelta(days=1), request_status_report=True)
    assert p.hex.startswith("0031000D91683108108300F00000A701")


def test_bad_number_is_refused() -> None:
    with pytest.raises(pdu.PduError, match="not a phone number"):
        pdu.encode_submit("zhang", "hi")


# -- decoding


def test_decode_ack_reply_from_staff() -> None:
    msg = pdu.decode(ACK_DELIVER)
    assert msg == Deliver(None, "+8613800138000", datetime(2024, 11, 22, 10, 0, 0, tzinfo=CN8), "ACK 收到", 8, None)


def test_decode_deliver_gsm7_with_extension_characters() -> None:
    msg = pdu.decode("06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910")
    assert isinstance(msg, Deliver)
    assert (msg.smsc, msg.sender, msg.text) == ("+2782913593", "+27821234567", "@{tést}!")


def test_decode_deliver_gsm7_concatenated() -> None:
    msg = pdu.decode(
        "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CAB060319A5C522289C96"
        "D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55EB0DB4B068BCD5C20"
    )
    assert isinstance(msg, Deliver)
    assert (msg.smsc, msg.sender) == ("+2781191", "2781188")
    assert msg.text == "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. "
    assert msg.concat == Concat(0xC3, 1, 1)


def test_decode_deliver_timestamp_and_alphanumeric_sender() -> None:
    msg = pdu.decode("07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E")
    assert isinstance(msg, Deliver)
    assert msg.timestamp == datetime(2007, 4, 12, 23, 25, 42, tzinfo=CN8)
    assert msg.text == "It is easy to read text messages via AT commands."
    # "FRANCOIS" as an alphanumeric originating address (python-gsmmodem address vector), UCS2 body "はい"
    alpha = pdu.decode("00040ED04669D0397C26A700084211220100002304306F3044")
    assert isinstance(alpha, Deliver)
    assert (alpha.sender, alpha.text) == ("FRANCOIS", "はい")


def test_decode_status_report() -> None:
    rep = pdu.decode("0006D60B911326880736F4111011719551401110117195714000")
    assert isinstance(rep, StatusReport)
    assert (rep.reference, rep.recipient, rep.status, rep.delivered, rep.final) == (214, "+31628870634", 0, True, True)
    assert rep.discharge == datetime(2011, 1, 11, 17, 59, 17, tzinfo=timezone(timedelta(hours=1)))


def test_decode_submit_vectors() -> None:
    a = pdu.decode("07914346466554F601000B914316565811F9000806304253F68449")
    assert isinstance(a, Submit)
    assert (a.smsc, a.number, a.text) == ("+34646456456", "+34616585119", "あ叶葉")
    b = pdu.decode("0041010C910661345542F60008A0050003000301306F3044")  # UDL deliberately too long
    assert isinstance(b, Submit)
    assert (b.number, b.text, b.concat) == ("+60164355246", "はい", Concat(0, 3, 1))
    c = pdu.decode("0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421")  # 8-bit data
    assert isinstance(c, Submit)
    assert (c.number, c.text, c.dcs) == ("+27821234567", "Hello world!", 4)
    d = pdu.decode(ALARM_1_PDU)
    assert isinstance(d, Submit)
    assert (d.text, d.status_report, d.reference) == (ALARM_1, True, 1)


def test_decode_garbage_raises_pdu_error() -> None:
    with pytest.raises(pdu.PduError):
        pdu.decode("00040D9168")
    with pytest.raises(pdu.PduError):
        pdu.decode("zz")
