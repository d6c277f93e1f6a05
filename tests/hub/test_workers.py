"""Two hub workers share one stream through an MQTT 5 shared subscription (real Mosquitto 2, real PostgreSQL).

One worker is SIGKILLed while it holds a batch it has not committed (row locks held by the test on the centers keep
its transaction waiting after it wrote the batch's events and alarms, so "mid-batch" is a fact, not a race);
started again under the same client id it gets them back from its persistent session, and the region ends
exactly as if nothing had happened.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.hub.boxes import T0, alarm, event, raw, site_msg
from tests.peers import Mosquitto, wait_until

pytestmark = pytest.mark.peer
ROOT = Path(__file__).resolve().parents[2]
SITES = ("north", "south", "east")


class Box:
    """Publishes as a box would: QoS 1, waiting for every PUBACK."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="box-sim", protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, messages: list[tuple[str, bytes, bool]]) -> None:
        infos = [self.client.publish(topic, body, qos=1, retain=retain) for topic, body, retain in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def events(first: int, last: int) -> list[tuple[str, bytes, bool]]:
    """Events `first`..`last`-1 spread over the sites: lots commissioned, then every tenth alarm opened."""
    out = []
    for i in range(first, last):
        site = SITES[i % len(SITES)]
        out.append((f"coldchain/{site}/events/epcis", raw(event(site, i, "commissioning", f"L{i}", T0 + i, "z1")), False))
        if i % 10 == 0:
            out.append((f"coldchain/{site}/events/alarms", raw(alarm(site, i, "open", T0 + i)), False))
    return out


def start(dsn: str, broker: Mosquitto, name: str, log: Path, *flags: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "hub", "--dsn", dsn, "worker", "--broker",
                                 f"127.0.0.1:{broker.port}", "--group", "g", "--client-id", name,
                                 "--report-every", "10", "--log-level", "debug", *flags],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]  # noqa: S608
        return int(row[0]) if row else 0


def subscribed(log: Path, times: int = 1, group: str = "g") -> bool:
    return log.read_text(errors="replace").count(f"subscribed (group {group})") >= times


@pytest.fixture
def workers(dsn: str, broker: Mosquitto, tmp_path: Path) -> Iterator[dict[str, Any]]:
    procs = {name: start(dsn, broker, name, tmp_path / f"{name}.log") for name in ("hub-a", "hub-b")}
    for name in procs:
        wait_until(lambda n=name: subscribed(tmp_path / f"{n}.log"), 30, f"{name} subscribed")  # type: ignore[misc]
    yield {"procs": procs, "logs": tmp_path}
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
            p.wait(15)


def test_a_worker_killed_mid_stream_loses_nothing_and_doubles_nothing(dsn: str, broker: Mosquitto,
                                                                      workers: dict[str, Any]) -> None:
    box = Box(broker)
    procs, logs = workers["procs"], workers["logs"]
    retained = [(f"coldchain/{s}/site", raw(site_msg(s, T0, [("z1", 100.0)])), True) for s in SITES] + [
        (f"coldchain/{s}/status", raw({"state": "online", "ts": T0}), True) for s in SITES]
    try:
        box.send(retained)
        box.send(events(0, 60))
        wait_until(lambda: count(dsn, "events") == 60, 60, "the first 60 events stored")
        for name in procs:  # both workers took part
            assert " stored" in (logs / f"{name}.log").read_text(), name
        with psycopg.connect(dsn) as blocker:
            written = batches(logs / "hub-a.log")
            blocker.execute("SELECT site FROM centers FOR UPDATE")  # a batch's center times, written last, now wait
            box.send(events(60, 200))
            wait_until(lambda: blocked(dsn, "hub-a"), 60, "hub-a waiting inside its transaction")
            held = batches(logs / "hub-a.log")[len(written):]
            assert len(held) == 1 and held[0] > 1, held  # the batch that never commits holds several messages
            os.kill(procs["hub-a"].pid, signal.SIGKILL)
            procs["hub-a"].wait(15)
            blocker.rollback()
        wait_until(lambda: count(dsn, "events") >= 100, 60, "hub-b goes on with its share")
        procs["hub-a"] = start(dsn, broker, "hub-a", logs / "hub-a.log")
        wait_until(lambda: count(dsn, "events") == 200, 60, "all 200 events, the killed worker's included")
        assert count(dsn, "event_lots") == 400  # cc:lot + quantityList epcClass per event, once each
        assert count(dsn, "alarm_changes") == 20 and count(dsn, "alarms") == 20
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT site, state FROM centers ORDER BY site").fetchall() == [
                ("east", "online"), ("north", "online"), ("south", "online")]
            assert conn.execute("SELECT count(*) FROM rooms").fetchone() == (3,)
    finally:  # clear them: a later test's hub on this broker would count north, south and east online
        box.send([(topic, b"", True) for topic, _, _ in retained])
        box.close()


def batches(log: Path) -> list[int]:
    """The size of each batch the worker wrote, from its debug lines (logged before the batch's commit)."""
    return [int(m) for m in re.findall(r"batch of (\d+) messages written", log.read_text(errors="replace"))]


def blocked(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                 "AND wait_event_type = 'Lock'", (name,)).fetchone() == (1,))


def test_a_worker_started_later_reads_the_retained_status(dsn: str, broker: Mosquitto, tmp_path: Path) -> None:
    """A center that went offline before the hub started is known from the retained Last Will, and an older status
    arriving late does not undo a newer one. (The spec gives a shared subscription no retained messages, hence the
    worker's plain one; Mosquitto 2.0.11 sends them to both, so here this passes either way.)"""
    box = Box(broker)
    box.send([("coldchain/west/status", raw({"state": "offline", "ts": T0 + 5}), True)])
    log = tmp_path / "hub-late.log"
    proc = start(dsn, broker, "hub-late", log)
    try:
        wait_until(lambda: state(dsn, "west") == "offline", 30, "west offline from the retained message")
        box.send([("coldchain/west/status", raw({"state": "online", "ts": T0 + 9}), True),
                  ("coldchain/west/status", raw({"state": "offline", "ts": T0 + 7}), True),  # late, older: ignored
                  ("coldchain/marker/status", raw({"state": "online", "ts": T0}), False)])
        wait_until(lambda: state(dsn, "marker") == "online", 30, "the marker after both")  # one client: in order
        assert state(dsn, "west") == "online"
    finally:
        proc.terminate()
        proc.wait(15)
        box.send([("coldchain/west/status", b"", True)])  # clear the retained message for later tests
        box.close()


def state(dsn: str, site: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT state FROM centers WHERE site = %s", (site,)).fetchone()
        return row[0] if row else None


def test_a_partial_batch_is_committed_when_its_time_is_up(dsn: str, broker: Mosquitto, tmp_path: Path) -> None:
    """Four messages, far fewer than a batch, and nothing after them: the worker commits them after --batch-ms
    and acknowledges them (restarted under its client id, it gets none of them back). A topic root and a group
    of its own: the other tests' retained messages and their stopped workers' sessions stay out of it."""
    box, log, flags = Box(broker), tmp_path / "hub-p.log", ("--group", "p", "--root", "part")
    sent = [(t.replace("coldchain/", "part/", 1), body, retain) for t, body, retain in events(0, 4)]
    proc = start(dsn, broker, "hub-p", log, *flags, "--batch-size", "500", "--batch-ms", "200")
    try:
        wait_until(lambda: subscribed(log, group="p"), 30, "hub-p subscribed")
        box.send(sent[:4])  # three events and an alarm
        wait_until(lambda: count(dsn, "events") == 3, 30, "the three events committed with no further message")
        assert count(dsn, "alarms") == 1 and sum(batches(log)) == 4
        proc.terminate()
        assert proc.wait(15) == 0
        assert "4 stored, 0 duplicate, 0 refused, 0 readings" in log.read_text()
        proc = start(dsn, broker, "hub-p", log, *flags)  # the same session: what was not acknowledged comes back
        wait_until(lambda: subscribed(log, 2, group="p"), 30, "hub-p subscribed again")
        box.send(sent[4:])
        wait_until(lambda: count(dsn, "events") == 4, 30, "a fourth event after the restart")
        assert batches(log)[-1] == 1, batches(log)  # it came alone: the first four were acknowledged
    finally:
        proc.terminate()
        proc.wait(15)
        box.close()


def test_a_worker_comes_back_after_the_broker_restarts(dsn: str, tmp_path: Path) -> None:
    """The worker runs paho's loop itself, so reconnecting is its own: the broker goes away and comes back on the
    same port, the worker subscribes again and goes on storing (a broker of its own, not the session's)."""
    broker = Mosquitto(tmp_path / "broker")
    broker.config.write_text(f"listener {broker.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {tmp_path / 'broker'}/\n", encoding="utf-8")
    broker.start()
    log = tmp_path / "hub-r.log"
    proc = start(dsn, broker, "hub-r", log)
    try:
        wait_until(lambda: subscribed(log), 30, "hub-r subscribed")
        box = Box(broker)
        box.send(events(1, 6))
        wait_until(lambda: count(dsn, "events") == 5, 30, "five events before the restart")
        box.close()
        broker.stop()
        broker.start()
        wait_until(lambda: subscribed(log, 2), 60, "hub-r subscribed again after the restart")
        assert proc.poll() is None
        box = Box(broker)
        box.send(events(11, 16))
        wait_until(lambda: count(dsn, "events") == 10, 30, "five more after it")
        box.close()
    finally:
        proc.terminate()
        proc.wait(15)
        broker.stop()
    assert proc.returncode == 0
