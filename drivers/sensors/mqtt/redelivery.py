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
from collections import deque
from collections.abc import Iterable, Sequence

import paho.mqtt.client as paho

CAP = 30_000
"""Keys remembered: more than a broker keeps in flight to one client, fewer than its 65,535 packet ids."""
_KEY = struct.Struct("<HI")

Key = int
"""packet id << 32 | CRC-32: one int, not a tuple of two (~80 B a key instead of ~170: 2.4 MB at CAP, not 5)."""


def key(msg: paho.MQTTMessage) -> Key:
    crc = zlib.crc32(bytes(msg.payload), zlib.crc32(msg.topic.encode("utf-8", "surrogateescape")))
    return (msg.mid & 0xFFFF) << 32 | crc


class ReceiptBook:
    """The newest stored messages' keys, from this run's batches and the receipts read back at start."""

    def __init__(self, bodies: Iterable[bytes] = ()) -> None:
        self._batches: deque[list[Key]] = deque()
        self._keys: dict[Key, int] = {}  # key -> batches holding it
        self._size = 0
        for body in bodies:
            whole = body[: len(body) - len(body) % _KEY.size]
            self._remember([mid << 32 | crc for mid, crc in _KEY.iter_unpack(whole)])

    def __len__(self) -> int:
        """Keys remembered (at most CAP plus the newest batch)."""
        return self._size

    def _remember(self, keys: list[Key]) -> None:
        self._batches.append(keys)
        counts = self._keys
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
        self._size += len(keys)
        while self._size > CAP and len(self._batches) > 1:
            old = self._batches.popleft()
            self._size -= len(old)
            for k in old:
                n = counts[k] - 1
                if n:
                    counts[k] = n
                else:
                    del counts[k]

    def body(self, msgs: Sequence[paho.MQTTMessage]) -> bytes:
        """The receipt of a batch about to be submitted (its QoS 1+ messages), remembered here too."""
        keys = [key(m) for m in msgs if m.qos]
        self._remember(keys)
        return b"".join(_KEY.pack(k >> 32, k & 0xFFFFFFFF) for k in keys)

    def stored(self, msg: paho.MQTTMessage) -> bool:
        """True for a redelivered copy (DUP) of a message stored before."""
        return bool(msg.dup) and key(msg) in self._keys
