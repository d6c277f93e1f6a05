"""SMS PDUs (3GPP TS 23.040 / 23.038): encode SMS-SUBMIT, decode SMS-DELIVER, SUBMIT and STATUS-REPORT.

Pure functions on bytes and hex strings, no I/O, so every byte can be checked against known vectors.
Hex in and out is upper case, as modems print it in `+CMGR:` / `+CDS:` and expect it after `AT+CMGS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# GSM 03.38 default alphabet, index = septet value (0x1B is the escape to the extension table).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}
_BASIC_INDEX = {ch: i for i, ch in enumerate(GSM7_BASIC) if i != 0x1B}
_EXT_REVERSE = {v: k for k, v in GSM7_EXT.items()}

GSM7_SINGLE, GSM7_PART = 160, 153  # septets; a part loses 7 to the 6-octet concatenation UDH
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units; a part loses 3 to the UDH

DCS_GSM7, DCS_8BIT, DCS_UCS2 = 0x00, 0x04, 0x08


class PduError(ValueError):
    """A PDU (or the text for one) cannot be encoded or decoded."""


# -- text codings


def gsm7_septets(text: str) -> list[int] | None:
    """Septet values for `text` in the GSM default alphabet + extension table; None if a character is missing."""
    out: list[int] = []
    for ch in text:
        if ch in _BASIC_INDEX:
            out.append(_BASIC_INDEX[ch])
        elif ch in GSM7_EXT:
            out += [0x1B, GSM7_EXT[ch]]
        else:
            return None
    return out


def gsm7_text(septets: list[int]) -> str:
    """Text from septet values; an escape before an unknown code gives a space, as 23.038 says."""
    out: list[str] = []
    esc = False
    for s in septets:
        if esc:
            out.append(_EXT_REVERSE.get(s, " "))
            esc = False
        elif s == 0x1B:
            esc = True
        else:
            out.append(GSM7_BASIC[s])
    return "".join(out)


def pack_septets(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack 7-bit values LSB first, after `fill_bits` zero bits (the padding after a UDH)."""
    acc, nbits, out = 0, fill_bits, bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """`count` 7-bit values from packed octets, skipping `fill_bits` leading bits; stops early if data runs out."""
    value = int.from_bytes(data, "little")
    total = len(data) * 8
    out = []
    for i in range(count):
        pos = fill_bits + 7 * i
        if pos + 7 > total:
            break
        out.append((value >> pos) & 0x7F)
    return out


# -- addresses and timestamps


def _semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2)))


def _semi_digits(data: bytes) -> str:
    s = "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in data)
    return s.rstrip("F")


def encode_address(number: str) -> bytes:
    """TP-DA: `+digits` becomes type 0x91 (international), bare digits 0x81 (unknown, as dialled)."""
    digits = number.removeprefix("+")
    if not digits.isdigit() or not 1 <= len(digits) <= 20:
        raise PduError(f"{number!r} is not a phone number (expected +8613800138000 or digits)")
    toa = 0x91 if number.startswith("+") else 0x81
    return bytes([len(digits), toa]) + _semi_octets(digits)


def encode_smsc(number: str) -> bytes:
    """The SMSC field in front of a TPDU: its length counts octets (type included), unlike TP-DA."""
    field = encode_address(number)[1:]
    return bytes([len(field)]) + field


def _decode_address(data: bytes, pos: int, smsc: bool = False) -> tuple[str | None, int]:
    """(address, next position); alphanumeric senders (type 0x50 group) are GSM-7 text."""
    length = data[pos]
    if smsc:
        if length == 0:
            return None, pos + 1
        toa, body = data[pos + 1], data[pos + 2 : pos + 1 + length]
        end = pos + 1 + length
    else:
        toa = data[pos + 1]
        nbytes = (length + 1) // 2
        body = data[pos + 2 : pos + 2 + nbytes]
        end = pos + 2 + nbytes
    if toa & 0x70 == 0x50:  # alphanumeric, e.g. "10086" shown as a name by the carrier
        return gsm7_text(unpack_septets(body, len(body) * 8 // 7 if smsc else length * 4 // 7)), end
    digits = _semi_digits(body)
    return ("+" + digits if toa & 0x70 == 0x10 else digits), end


def _bcd(b: int) -> int:
    return (b & 0x0F) * 10 + (b >> 4)


def decode_timestamp(data: bytes) -> datetime:
    """TP-SCTS / TP-DT: swapped BCD date and time, zone in quarter hours (bit 3 of the low nibble = minus)."""
    if len(data) != 7:
        raise PduError("timestamp needs 7 octets")
    tz = data[6]
    quarters = (tz & 0x07) * 10 + (tz >> 4)
    offset = timedelta(minutes=15 * quarters) * (-1 if tz & 0x08 else 1)
    try:
        return datetime(2000 + _bcd(data[0]), _bcd(data[1]), _bcd(data[2]), _bcd(data[3]), _bcd(data[4]),
                        _bcd(data[5]), tzinfo=timezone(offset))
    except ValueError as exc:
        raise PduError(f"bad timestamp {data.hex().upper()}: {exc}") from exc


def relative_validity(period: timedelta) -> int:
    """TP-VP relative format (23.040 9.2.3.12.1): 24 h -> 167, rounding up to the next step."""
    minutes = -(-period.total_seconds() // 60)
    if minutes <= 0:
        raise PduError("validity period must be positive")
    if minutes <= 720:
        return int(-(-minutes // 5)) - 1
    if minutes <= 1440:
        return 143 + int(-(-(minutes - 720) // 30))
    days = -(-minutes // 1440)
    if days <= 30:
        return 166 + int(days)
    weeks = -(-days // 7)
    if weeks <= 63:
        return 192 + int(weeks)
    raise PduError("validity period longer than 63 weeks")


# -- SMS-SUBMIT


@dataclass(frozen=True, slots=True)
class SubmitPdu:
    """One PDU for `AT+CMGS=<tpdu_length>`: `hex` includes the SMSC field, `tpdu_length` does not count it."""

    hex: str
    tpdu_length: int


def split_text(text: str) -> tuple[int, list[list[int]] | list[str]]:
    """(DCS, parts): GSM-7 septet lists or UCS2 strings, cut so no escape or surrogate pair is split."""
    septets = gsm7_septets(text)
    if septets is not None:
        if len(septets) <= GSM7_SINGLE:
            return DCS_GSM7, [septets]
        parts: list[list[int]] = [[]]
        for ch in text:
            code = gsm7_septets(ch) or []
            if len(parts[-1]) + len(code) > GSM7_PART:
                parts.append([])
            parts[-1].extend(code)
        return DCS_GSM7, parts
    units = len(text.encode("utf-16-be")) // 2
    if units <= UCS2_SINGLE:
        return DCS_UCS2, [text]
    chunks: list[str] = [""]
    used = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > UCS2_PART:
            chunks.append("")
            used = 0
        chunks[-1] += ch
        used += width
    return DCS_UCS2, chunks


def encode_submit(
    number: str,
    text: str,
    *,
    reference: int = 0,
    request_status_report: bool = False,
    validity: timedelta | None = None,
    smsc: str | None = None,
    reject_duplicates: bool = False,
) -> list[SubmitPdu]:
    """SMS-SUBMIT PDU(s) for `text`: GSM-7 when every character is in 03.38, else UCS2, split with an 8-bit UDH.

    `reference` goes in TP-MR (modems usually replace it) and in the concatenation UDH, so a retry of
    the same outbox message reuses the reference and a phone never merges parts of two messages.
    """
    if not 0 <= reference <= 255:
        raise PduError("reference must fit in one octet")
    dcs, parts = split_text(text)
    if len(parts) > 255:
        raise PduError("text needs more than 255 parts")
    fo = 0x01  # SMS-SUBMIT
    vp = b""
    if validity is not None:
        fo |= 0x10  # TP-VPF relative
        vp = bytes([relative_validity(validity)])
    if reject_duplicates:
        fo |= 0x04
    if request_status_report:
        fo |= 0x20
    multi = len(parts) > 1
    if multi:
        fo |= 0x40  # TP-UDHI
    head_sc = encode_smsc(smsc) if smsc else b"\x00"
    out: list[SubmitPdu] = []
    for seq, part in enumerate(parts, start=1):
        udh = bytes([0x05, 0x00, 0x03, reference, len(parts), seq]) if multi else b""
        if dcs == DCS_GSM7:
            assert isinstance(part, list)
            if udh:
                fill = (7 - (len(udh) * 8) % 7) % 7
                ud = udh + pack_septets(part, fill)
                udl = (len(udh) * 8 + fill) // 7 + len(part)
            else:
                ud, udl = pack_septets(part), len(part)
        else:
            assert isinstance(part, str)
            ud = udh + part.encode("utf-16-be")
            udl = len(ud)
        tpdu = bytes([fo, reference]) + encode_address(number) + bytes([0x00, dcs]) + vp + bytes([udl]) + ud
        out.append(SubmitPdu((head_sc + tpdu).hex().upper(), len(tpdu)))
    return out


# -- decoding


@dataclass(frozen=True, slots=True)
class Concat:
    """A concatenation UDH element: `reference` shared by all parts, `seq` of `total` (from 1)."""

    reference: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """An SMS-DELIVER (a message someone sent to the modem)."""

    smsc: str | None
    sender: str
    timestamp: datetime
    text: str
    dcs: int
    concat: Concat | None


@dataclass(frozen=True, slots=True)
class Submit:
    """An SMS-SUBMIT read back (the fake modem and tests look inside what was sent)."""

    smsc: str | None
    number: str
    reference: int
    text: str
    dcs: int
    concat: Concat | None
    status_report: bool
    validity: int | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """An SMS-STATUS-REPORT: `reference` is the TP-MR the modem gave in `+CMGS:`; status 0 = delivered."""

    smsc: str | None
    reference: int
    recipient: str
    timestamp: datetime
    discharge: datetime
    status: int

    @property
    def delivered(self) -> bool:
        """Status 0x00-0x1F: the transaction completed (received, forwarded, or replaced)."""
        return self.status < 0x20

    @property
    def final(self) -> bool:
        """0x20-0x3F means the SMSC is still trying; anything else is the last word."""
        return not 0x20 <= self.status < 0x40


def _alphabet(dcs: int) -> int:
    """The character set a DCS selects (23.038 section 4), as DCS_GSM7 / DCS_8BIT / DCS_UCS2."""
    group = dcs & 0xF0
    if group < 0x80:  # general data coding (compressed text is not supported by any modem we meet)
        return {0: DCS_GSM7, 1: DCS_8BIT, 2: DCS_UCS2}.get((dcs >> 2) & 0x03, DCS_8BIT)
    if group in (0xC0, 0xD0):
        return DCS_GSM7
    if group == 0xE0:
        return DCS_UCS2
    if group == 0xF0:
        return DCS_8BIT if dcs & 0x04 else DCS_GSM7
    return DCS_8BIT


def _user_data(fo: int, dcs: int, udl: int, ud: bytes) -> tuple[str, Concat | None]:
    concat = None
    header_len = 0
    if fo & 0x40 and ud:
        header_len = ud[0] + 1
        pos = 1
        while pos + 1 < header_len:
            iei, ln = ud[pos], ud[pos + 1]
            data = ud[pos + 2 : pos + 2 + ln]
            if iei == 0x00 and ln == 3:
                concat = Concat(data[0], data[1], data[2])
            elif iei == 0x08 and ln == 4:
                concat = Concat((data[0] << 8) | data[1], data[2], data[3])
            pos += 2 + ln
    alphabet = _alphabet(dcs)
    if alphabet == DCS_GSM7:
        skip = -(-header_len * 8 // 7)
        return gsm7_text(unpack_septets(ud, udl)[skip:]), concat
    body = ud[header_len:udl]  # a UDL longer than the data (seen in the wild) is clamped
    if alphabet == DCS_UCS2:
        return body[: len(body) // 2 * 2].decode("utf-16-be", errors="replace"), concat
    return body.decode("latin-1"), concat


def decode(pdu_hex: str, *, has_smsc: bool = True) -> Deliver | Submit | StatusReport:
    """Decode a PDU as printed by `+CMGR:`, `+CMGL:` or `+CDS:` (SMSC field first unless `has_smsc` is False)."""
    try:
        data = bytes.fromhex(pdu_hex.strip())
    except ValueError as exc:
        raise PduError(f"not hex: {pdu_hex[:40]!r}") from exc
    try:
        return _decode(data, has_smsc)
    except IndexError as exc:
        raise PduError(f"PDU ends early: {pdu_hex[:60]}") from exc


def _decode(data: bytes, has_smsc: bool) -> Deliver | Submit | StatusReport:
    smsc, pos = _decode_address(data, 0, smsc=True) if has_smsc else (None, 0)
    fo = data[pos]
    mti = fo & 0x03
    pos += 1
    if mti == 0x00:
        sender, pos = _decode_address(data, pos)
        dcs = data[pos + 1]
        ts = decode_timestamp(data[pos + 2 : pos + 9])
        udl = data[pos + 9]
        text, concat = _user_data(fo, dcs, udl, data[pos + 10 :])
        return Deliver(smsc, sender or "", ts, text, dcs, concat)
    if mti == 0x01:
        ref = data[pos]
        number, pos = _decode_address(data, pos + 1)
        dcs = data[pos + 1]
        pos += 2
        vpf = (fo >> 3) & 0x03
        validity = None
        if vpf == 0x02:
            validity = data[pos]
            pos += 1
        elif vpf in (0x01, 0x03):
            pos += 7
        udl = data[pos]
        text, concat = _user_data(fo, dcs, udl, data[pos + 1 :])
        return Submit(smsc, number or "", ref, text, dcs, concat, bool(fo & 0x20), validity)
    if mti == 0x02:
        ref = data[pos]
        recipient, pos = _decode_address(data, pos + 1)
        scts = decode_timestamp(data[pos : pos + 7])
        dt = decode_timestamp(data[pos + 7 : pos + 14])
        return StatusReport(smsc, ref, recipient or "", scts, dt, data[pos + 14])
    raise PduError(f"unknown message type indicator {mti} (first octet {fo:02X})")
