"""Read-registers requests and replies in the two framings a gateway speaks: MBAP (Modbus TCP) and RTU (CRC)."""

from __future__ import annotations

import asyncio
import struct
from typing import Literal

Framing = Literal["tcp", "rtu"]

EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
              6: "server busy", 10: "gateway path unavailable", 11: "gateway target failed to respond"}


class ExceptionReply(Exception):
    """The device (or the gateway for it) answered with a Modbus exception code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exception 0x{code:02X} ({EXCEPTIONS.get(code, 'unknown')})")
        self.code = code


class BadFrame(Exception):
    """Bytes that are no valid reply: the stream is out of step and the connection is dropped."""


def crc16(data: bytes) -> bytes:
    """Modbus RTU CRC (poly 0xA001, init 0xFFFF), low byte first as on the wire."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def request(framing: Framing, tid: int, unit: int, fc: int, start: int, count: int) -> bytes:
    """One read request for `count` registers (FC03/FC04) or bits (FC01/FC02) from `start`."""
    pdu = struct.pack(">BBHH", unit, fc, start, count)
    if framing == "rtu":
        return pdu + crc16(pdu)
    return struct.pack(">HHH", tid, 0, len(pdu)) + pdu


def _words(fc: int, pdu: bytes, count: int) -> list[int]:
    """Register values (or, for FC01/FC02, the bits 0/1, packed lowest first in each byte) from a reply PDU
    (function code first); raises ExceptionReply or BadFrame."""
    if pdu[0] == fc | 0x80 and len(pdu) >= 2:
        raise ExceptionReply(pdu[1])
    size = (count + 7) // 8 if fc in (1, 2) else 2 * count
    if pdu[0] != fc or len(pdu) < 2 or pdu[1] != size or len(pdu) != 2 + size:
        raise BadFrame(f"unexpected reply {pdu[:8].hex(' ')}")
    if fc in (1, 2):
        return [(pdu[2 + i // 8] >> (i % 8)) & 1 for i in range(count)]
    return list(struct.unpack(f">{count}H", pdu[2:]))


async def reply(reader: asyncio.StreamReader, framing: Framing, tid: int, unit: int, fc: int, count: int) -> list[int]:
    """Read until the reply to this request; stale replies (other transaction id or unit) are skipped."""
    while True:
        if framing == "tcp":
            head = await reader.readexactly(7)
            rtid, proto, length, _runit = struct.unpack(">HHHB", head)
            if proto != 0 or not 2 <= length <= 254:
                raise BadFrame(f"bad MBAP header {head.hex(' ')}")
            pdu = await reader.readexactly(length - 1)
            if rtid == tid:
                return _words(fc, pdu, count)
            continue
        head = await reader.readexactly(3)
        rest = await reader.readexactly(2 if head[1] & 0x80 else head[2] + 2)
        frame = head + rest
        if crc16(frame[:-2]) != frame[-2:]:
            raise BadFrame(f"CRC error in {frame[:8].hex(' ')}")
        if head[0] == unit:
            return _words(fc, frame[1:-2], count)
