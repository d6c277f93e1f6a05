"""How many unacknowledged QoS 1 messages Mosquitto sends one subscriber, by the broker's max_inflight_messages,
the subscriber's protocol and its MQTT 5 Receive Maximum (docs/robustness.md has the table).

The daemon acknowledges a message only after its journal commit, so this figure caps the messages of one commit
window. A subscriber that acknowledges nothing receives exactly the window; a publisher sends 300 messages.
Run: `python -m bench.inflight` (Mosquitto from Debian's package on PATH)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.common import BenchBroker, machine

SENT = 300
CASES: list[tuple[str, int | None]] = [("3.1.1", None), ("5", None), ("5", 50), ("5", 250)]


def _subscriber(port: int, protocol: str, receive_maximum: int | None, got: list[int]) -> paho.Client:
    if protocol == "5":
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="inflight-sub", protocol=paho.MQTTv5)
    else:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="inflight-sub", protocol=paho.MQTTv311,
                             clean_session=False)
    client.manual_ack_set(True)  # never acknowledged: what arrives is what the broker lets through
    client.on_message = lambda *_a: got.append(1)
    if protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if receive_maximum is not None:
            props.ReceiveMaximum = receive_maximum
        client.connect("127.0.0.1", port, properties=props)
    else:
        client.connect("127.0.0.1", port)
    client.subscribe("inflight", qos=1)
    client.loop_start()
    return client


def unacked(max_inflight: int | None, protocol: str, receive_maximum: int | None) -> int:
    """Messages one never-acknowledging subscriber holds after SENT were published and the broker went quiet."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = BenchBroker(Path(tmp), "" if max_inflight is None else f"max_inflight_messages {max_inflight}\n")
        broker.start()
        try:
            got: list[int] = []
            sub = _subscriber(broker.port, protocol, receive_maximum, got)
            time.sleep(0.3)  # subscribed before the first publish
            pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="inflight-pub")
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            for info in [pub.publish("inflight", b"x", qos=1) for _ in range(SENT)]:
                info.wait_for_publish(30)
            last, quiet_since = -1, time.monotonic()
            while time.monotonic() - quiet_since < 1.5:  # until nothing more arrives for 1.5 s
                if len(got) != last:
                    last, quiet_since = len(got), time.monotonic()
                time.sleep(0.05)
            for c in (pub, sub):
                c.loop_stop()
            return len(got)
        finally:
            broker.stop()


def main() -> None:
    print(f"{machine().get('mosquitto', 'mosquitto ?')}; {SENT} QoS 1 messages published, none acknowledged\n")
    print("| broker max_inflight_messages | subscriber protocol | Receive Maximum | messages sent unacknowledged |")
    print("|---|---|---|---|")
    for max_inflight in (None, 100, 1000):
        for protocol, rm in CASES:
            n = unacked(max_inflight, protocol, rm)
            print(f"| {max_inflight or 'not set (20)'} | {protocol} | {rm or 'not sent'} | {n} |")


if __name__ == "__main__":
    main()
