"""The documented broker ACL (deploy/mosquitto/coldchain-acl.conf) on a real Mosquitto with logins, through a real
hub worker: a center that publishes under another site's topic is refused by the broker (MQTT 5 reason code),
and one that forges `cc:site` under its own topic is refused by the hub; only the honest event is stored.
"""

from __future__ import annotations

import getpass
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.hub.boxes import T0, event, raw
from tests.peers import Mosquitto, wait_until

pytestmark = pytest.mark.peer
ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "deploy" / "mosquitto" / "coldchain-acl.conf"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    passwd = tmp_path / "passwd"
    for user in ("north", "south", "hub"):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if user == "north" else []), str(passwd), user,
                        f"{user}-pw"], check=True, capture_output=True)
    passwd.chmod(0o600)
    broker.config.write_text(f"user {getpass.getuser()}\n"  # root would drop to `mosquitto`, who cannot read tmp
                             f"listener {broker.port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
                             f"password_file {passwd}\nacl_file {ACL}\n", encoding="utf-8")
    broker.start()
    yield broker
    broker.stop()


def publish(broker: Mosquitto, user: str, topic: str, body: bytes) -> int:
    """The PUBACK reason code the broker gave the QoS 1 publish (0 accepted, 135 not authorised)."""
    got: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"box-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, f"{user}-pw")
    client.on_publish = lambda _c, _u, _mid, reason, _p: got.append(int(reason.value))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(topic, body, qos=1).wait_for_publish(15)
    wait_until(lambda: got, 15, f"PUBACK for {topic}")
    client.disconnect()
    client.loop_stop()
    return got[0]


def test_each_center_writes_only_its_own_site(dsn: str, guarded: Mosquitto, tmp_path: Path) -> None:
    (tmp_path / "hub.pw").write_text("hub-pw")
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "hub", "--dsn", dsn, "worker", "--broker",
                                   f"127.0.0.1:{guarded.port}", "--client-id", "hub-acl", "--username", "hub",
                                   "--password-file", str(tmp_path / "hub.pw")], cwd=ROOT, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "subscribed" in log.read_text(), 30, "worker subscribed")
        assert publish(guarded, "north", "coldchain/south/events/epcis",
                       raw(event("south", 1, "storing", "X1", T0, "z1"))) == 135  # the broker: not authorised
        assert publish(guarded, "north", "coldchain/north/events/epcis",
                       raw(event("south", 2, "storing", "X2", T0, "z1"))) == 0  # accepted, then the hub refuses
        assert publish(guarded, "north", "coldchain/north/events/epcis",
                       raw(event("north", 3, "storing", "N1", T0, "z1"))) == 0
        with psycopg.connect(dsn) as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM events").fetchone() == (1,), 30, "N1 stored")
            assert conn.execute("SELECT lot, site FROM events").fetchall() == [("N1", "north")]
            assert conn.execute("SELECT topic, reason FROM rejected").fetchall() == [
                ("coldchain/north/events/epcis",
                 "cc:site: 'south' is not the topic's site 'north' (a center writes only its own)")]
        assert "refused coldchain/north/events/epcis: cc:site: 'south'" in log.read_text()
    finally:
        worker.terminate()
        worker.wait(15)
