"""A committed batch's PUBACKs as one packet queued in paho: one wake-up of its network thread and one
socket write for the batch, instead of `Client.ack()` per message (a socketpair write each: 15 % of the
event loop's samples in the session 7 profile of a backlog drain).

The bytes are what paho's `_send_command_with_mid(PUBACK, mid)` builds (0x40, remaining length 2, the
packet id), valid for MQTT 3.1.1 and MQTT 5 (a PUBACK of length 2 means reason code 0, success); they
go through paho's own outgoing queue (`_packet_queue`, the method `ack()` ends in), so they keep their
place behind anything paho queued before and are written by its thread like any other packet.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import paho.mqtt.client as paho

PUBACK = 0x40
_HEAD = PUBACK << 24 | 2 << 16  # first two bytes of a PUBACK; the packet id fills the low 16 bits


def puback_bytes(mids: Sequence[int]) -> bytes:
    """The PUBACK packets of `mids`, in order, back to back (4 bytes each)."""
    return struct.pack(f"!{len(mids)}I", *[_HEAD | (m & 0xFFFF) for m in mids])


def ack_all(client: paho.Client, mids: Sequence[int]) -> None:
    """Queue one PUBACK per QoS 1 packet id in `mids`, in order, as a single write."""
    if mids:
        # mid 0 / qos 0: paho reads them only for PUBLISH packets (on_publish); this is not one
        client._packet_queue(PUBACK, puback_bytes(mids), 0, 0)  # where ack() ends; once per batch
