"""Which messages are stored already: a redelivered copy (DUP) is acknowledged, not stored twice.

A batch's receipt holds, per QoS 1 message, its packet id and a CRC-32 of its topic and payload
(6 bytes). It is committed with the batch's readings (`daemon/ports/sources.py` Receipt), so a copy
the broker resends after a kill -9 between the commit and the PUBACK is recognised from the
journal without a look-up per message. Only DUP messages are checked. The broker numbers a
client's packets in turn (1..65535), so within the newest `CAP` keys a packet id stands for one
message; a copy matches only with its own id and the same bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence

import paho.mqtt.client as paho

CAP = 30_000
"""Keys remembered: more than a broker keeps in flight to one client, fewer than its 65,535 packet ids."""
_KEY = struct.Struct("<HI")
_SIZE = _KEY.size


def key(msg: paho.MQTTMessage) -> bytes:
    """packet id and CRC-32 of topic + payload, packed as they are stored in a receipt (6 bytes)."""
    crc = zlib.crc32(bytes(msg.payload), zlib.crc32(msg.topic.encode("utf-8", "surrogateescape")))
    return _KEY.pack(msg.mid & 0xFFFF, crc)


class ReceiptBook:
    """The newest CAP stored messages' keys, from this run's batches and the receipts read back at start.

    A ring of packed keys preallocated once (180 KB at CAP), not a dict of ints (~3.9 MiB at CAP, which
    filled over the first minutes or hours and looked like a memory slope). Only DUP copies are looked up,
    and only after a reconnect, so a scan of the ring (bytes.find, ~0.1 ms at CAP) costs nothing on the path
    of new messages.
    """

    def __init__(self, bodies: Iterable[bytes] = ()) -> None:
        self._ring = bytearray(CAP * _SIZE)
        self._pos = 0  # next slot's byte offset
        self._count = 0  # keys held, at most CAP
        for body in bodies:
            self._remember(body[: len(body) - len(body) % _SIZE])

    def __len__(self) -> int:
        """Keys remembered (at most CAP)."""
        return self._count

    def _remember(self, keys: bytes) -> None:
        ring, end = self._ring, len(self._ring)
        if len(keys) >= end:  # more than the ring holds: its newest CAP
            keys = keys[len(keys) - end:]
        pos = self._pos
        first = min(len(keys), end - pos)
        ring[pos:pos + first] = keys[:first]
        rest = len(keys) - first
        if rest:
            ring[:rest] = keys[first:]
        self._pos = (pos + len(keys)) % end
        self._count = min(CAP, self._count + len(keys) // _SIZE)

    def body(self, msgs: Sequence[paho.MQTTMessage]) -> bytes:
        """The receipt of a batch about to be submitted (its QoS 1+ messages), remembered here too."""
        body = b"".join([key(m) for m in msgs if m.qos])
        self._remember(body)
        return body

    def stored(self, msg: paho.MQTTMessage) -> bool:
        """True for a redelivered copy (DUP) of a message stored before."""
        if not msg.dup:
            return False
        k, ring = key(msg), self._ring
        held = self._count * _SIZE  # a ring not yet full holds keys from offset 0 up to here
        i = ring.find(k, 0, held)
        while i >= 0:
            if i % _SIZE == 0:
                return True
            i = ring.find(k, i + 1, held)
        return False
