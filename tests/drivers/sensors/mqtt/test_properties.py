"""SharedTablesProperties decodes MQTT 5 properties as paho's own Properties does (values, errors, the packet
decoder's results), from tables built once; installed for paho's decoder by LoopedClient."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.sensors.mqtt.aioloop import SharedTablesProperties, share_property_tables

CASES: list[dict[str, Any]] = [
    {},
    {"SubscriptionIdentifier": 1},
    {"SubscriptionIdentifier": [1, 2]},
    {"SubscriptionIdentifier": 268_435_455, "UserProperty": [("a", "b"), ("温度", "5.1")]},
    {"PayloadFormatIndicator": 1, "MessageExpiryInterval": 30, "ContentType": "application/json",
     "ResponseTopic": "r/1", "CorrelationData": b"\x00\x01", "TopicAlias": 3, "SubscriptionIdentifier": 7},
]


def packed(props: dict[str, Any]) -> bytes:
    p = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in props.items():
        setattr(p, name, value)
    return bytes(p.pack())  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("props", CASES)
def test_decodes_as_paho(props: dict[str, Any]) -> None:
    buf = packed(props) + b"payload"
    theirs, mine = Properties(PacketTypes.PUBLISH), SharedTablesProperties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    t_props, t_len = theirs.unpack(buf)  # type: ignore[no-untyped-call]
    m_props, m_len = mine.unpack(buf)
    assert m_len == t_len and m_props is mine and t_props is theirs
    assert mine.json() == theirs.json()  # type: ignore[no-untyped-call]
    assert str(mine) == str(theirs) and mine.isEmpty() == theirs.isEmpty()  # type: ignore[no-untyped-call]
    assert bytes(mine.pack()) == bytes(theirs.pack())  # type: ignore[no-untyped-call]


def test_a_reused_instance_starts_empty() -> None:
    p = SharedTablesProperties(PacketTypes.PUBLISH)
    p.unpack(packed({"SubscriptionIdentifier": 1, "ContentType": "x"}))
    p.unpack(packed({"SubscriptionIdentifier": 2}))
    assert p.json() == {"SubscriptionIdentifier": [2]}  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("raw", [
    b"\x04\x0b\x00\x0b\x01",  # subscription identifier 0 (MQTT 5 section 3.3.2.3.8: 1..268,435,455)
    b"\x04\x03\x00\x01x",  # content type cut short (declared 4 bytes, 3 follow)
    b"\x06\x02\x00\x00\x00\x01\x02",  # message expiry, then an unknown property 2's value missing
    b"\x0a\x02\x00\x00\x00\x01\x02\x00\x00\x00\x02",  # message expiry twice
    b"\x02\x63\x00",  # property 99: none such
])
def test_bad_properties_fail_as_with_paho(raw: bytes) -> None:
    def outcome(cls: type[Properties]) -> str:
        try:
            p = cls(PacketTypes.PUBLISH)
            p.unpack(raw)  # type: ignore[no-untyped-call]
            return f"ok {p.json()}"  # type: ignore[no-untyped-call]
        except (MQTTException, KeyError, IndexError, ValueError, struct.error) as exc:
            return type(exc).__name__

    assert outcome(SharedTablesProperties) == outcome(Properties)


def test_paho_decoder_uses_it_once_installed() -> None:
    share_property_tables()
    share_property_tables()  # idempotent
    assert _packet.Properties is SharedTablesProperties  # type: ignore[attr-defined]
    body = b"\x00\x03a/b" + b"\x00\x07" + packed({"SubscriptionIdentifier": 1}) + b'{"t":5}'
    result = _packet.decode_publish(0x32, body, MQTTProtocolVersion.MQTTv5)
    assert isinstance(result.properties, SharedTablesProperties)
    assert (result.topic, result.mid, result.payload) == (b"a/b", 7, b'{"t":5}')
    assert result.properties.json() == {"SubscriptionIdentifier": [1]}  # type: ignore[no-untyped-call]
