"""Scaffolding of the proofs of issue 13 (every reading once, at its own time): the real daemon process
against a queueing Mosquitto and InfluxDB 1.6.7, a publisher that knows which messages the broker took
(PUBACK), and the tally that compares what was acknowledged with the journal and with InfluxDB.

Every published message carries a per-sensor sequence number in its value (`encode`), so a journal row
or an InfluxDB point can be matched to the message it came from, with or without a device time.
"""

from __future__ import annotations

import getpass
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from daemon.ports.model import Reading
from daemon.storage.journal import Journal
from tests.peers import InfluxD, Mosquitto, wait_until

ROOT = Path(__file__).resolve().parents[3]
OFFSET = 40.0  # value = seq / 1000 - 40: inside the physical range (-50..70 °C) for seq < 110,000
CURSOR = "sink:central"


def encode(seq: int) -> float:
    """The temperature that carries sequence number `seq` (the journal keeps 4 decimals)."""
    return round(seq / 1000 - OFFSET, 3)


def decode(value: float | None) -> int | None:
    """The sequence number of a stored value; None if the value cannot be one we sent."""
    if value is None:
        return None
    seq = round((value + OFFSET) * 1000)
    return seq if abs(encode(seq) - value) < 1e-6 else None


class QueueingBroker(Mosquitto):
    """Mosquitto with persistence and the queue settings of a box that must not lose a backlog.

    `max_queued_messages 0` (no limit; the default 1000 drops the rest of a backlog per client while still
    acknowledging it to the publisher) and `max_inflight_messages 1000` (the default 20 caps the messages
    per journal commit; docs/benchmarks.md recommends it for the box's broker)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        user = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""  # root would drop to `mosquitto`
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{user}"
            f"persistence true\npersistence_location {root}/\nautosave_interval 1\n"
            "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\n",
            encoding="utf-8")


def _client(client_id: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                    protocol=paho.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    return c


def open_session(port: int, client_id: str, topics: list[str]) -> None:
    """Create the daemon's persistent session (QoS 1 on its exact topics) before the daemon ever ran,
    so the broker queues everything published from now on for it."""
    c = _client(client_id)
    subscribed: list[bool] = []
    c.on_subscribe = lambda *_a: subscribed.append(True)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        for i in range(0, len(topics), 100):
            c.subscribe([(t, 1) for t in topics[i:i + 100]])
        wait_until(lambda: len(subscribed) == -(-len(topics) // 100), 20, "SUBACK of the daemon's session")
    finally:
        c.disconnect()
        c.loop_stop()


@dataclass
class Sent:
    sensor: str
    seq: int
    info: paho.MQTTMessageInfo


class Publisher:
    """QoS 1 publisher with its own persistent session; a message counts as taken once PUBACKed."""

    def __init__(self, port: int, client_id: str, device_time: bool) -> None:
        self.client = _client(client_id)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.device_time = device_time
        self.t0_ms = int(time.time() * 1000) - 120_000  # device times: 10 ms apart per sensor, in the past
        self.sent: list[Sent] = []
        self.next_seq: Counter[str] = Counter()

    def publish(self, sensor: str) -> None:
        self.next_seq[sensor] += 1
        seq = self.next_seq[sensor]
        body: dict[str, Any] = {"t": encode(seq)}
        if self.device_time:
            body["ts"] = self.t0_ms + 10 * seq
        self.sent.append(Sent(sensor, seq, self.client.publish(topic(sensor), json.dumps(body), qos=1)))

    def acked(self) -> set[tuple[str, int]]:
        return {(s.sensor, s.seq) for s in self.sent if s.info.is_published()}

    def wait_all_acked(self, deadline_s: float = 60) -> None:
        wait_until(lambda: all(s.info.is_published() for s in self.sent), deadline_s, "PUBACK of every message")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sensor_ids(n: int) -> list[str]:
    return [f"m{i:03d}" for i in range(n)]


def topic(sensor: str) -> str:
    return f"proof/{sensor}/state"


def daemon_config(tmp: Path, broker_port: int, influx: InfluxD, db: str, sensors: list[str], *,
                  device_time: bool, api_port: int | None = None) -> Path:
    """A config of MQTT `json` sensors (value `t`, device time `ts` in ms when trusted) and one InfluxDB sink;
    limits the values never reach and no no-data alarm, so no alarm commits out of turn."""
    time_opts: dict[str, Any] = {"timestamp": {"path": "ts", "format": "epoch_ms"}, "trust_device_time": True} \
        if device_time else {}
    doc = {
        "site": {"id": "proof", "name": "证明"},
        "storage": {"journal": str(tmp / "journal.db")},
        "mqtt": {"port": broker_port, "client_id": "coldchain-proof", "reconnect_min": 1, "reconnect_max": 1,
                 "discover": []},
        "zones": [{"id": "z1", "name": "1号库", "alarms": {"no_data": False, "stuck_after": None,
                                                           "temperature": {"high": 69.0, "low": -49.0}}}],
        "sensors": [{"id": s, "zone": "z1", "type": "mqtt", "format": "json", "topic": topic(s),
                     "values": {"temperature": "t"}, "availability": False, **time_opts} for s in sensors],
        "sinks": [{"id": "central", "type": "influxdb1", "url": influx.url, "database": db, "batch_size": 500,
                   "timeout": 2}],
        "api": {"enabled": api_port is not None, "port": api_port or 0},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


class DaemonProcess:
    """`python -m daemon run`: the real command, started, SIGKILLed or stopped by its own pid."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.parent / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "daemon", "--log-level", "warning", "run", "-c",
                                          str(self.config)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"the daemon exited by itself ({self.proc.returncode}); see {self.log}"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class JournalProbe:
    """Reads the journal of a running daemon through a read-only connection (never checkpoints or locks)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        if not self.path.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as db:
                row = db.execute(sql, args).fetchone()
        except sqlite3.OperationalError:  # not created yet
            return 0
        return int(row[0] or 0) if row else 0

    def max_id(self) -> int:
        return self._one("SELECT max(id) FROM readings")

    def messages(self) -> int:
        """Distinct messages stored: each value carries its message's sequence number (`encode`)."""
        return self._one("SELECT count(*) FROM (SELECT DISTINCT series, value FROM readings)")

    def cursor(self) -> int:
        return self._one("SELECT last_id FROM cursors WHERE name = ?", (CURSOR,))

    def drained(self) -> bool:
        top = self.max_id()
        return top > 0 and self.cursor() >= top


def settle(probe: JournalProbe, want: int, deadline_s: float = 60) -> None:
    """Wait until the running daemon has stored `want` distinct messages, stopped growing and forwarded all;
    a proof does not fail here: if that never happens, the tally says what is missing."""
    end, last = time.monotonic() + deadline_s, -1
    while time.monotonic() < end:
        top = probe.max_id()
        if top == last and probe.messages() >= want and probe.drained():
            return
        last = top
        time.sleep(0.5)


def influx_counts(influx: InfluxD, db: str) -> dict[str, int]:
    """Distinct points per sensor as InfluxDB holds them (a point of the same series and ms overwrites the last):
    `count()` per series (GROUP BY *, every tag set apart), summed per sensor."""
    out: Counter[str] = Counter()
    for s in influx.query('SELECT count("temperature") FROM "readings" GROUP BY *', db):
        out[s["tags"]["sensor"]] += int(s["values"][0][1])
    return dict(out)


@dataclass
class Tally:
    """What the broker took, the journal holds and InfluxDB holds, and each way they disagree."""

    published: int
    acked: int
    journal_rows: int
    influx_points: int
    missing: int = 0  # acknowledged, not in the journal
    duplicated: int = 0  # rows beyond the first of one message
    collapsed: int = 0  # rows sharing (series, ts) with an earlier row
    altered: int = 0  # rows or points whose value is no message we sent (or not its value)
    out_of_order: int = 0  # sensors whose journal order by time is not the order of publication
    copies: list[int] = field(default_factory=list)  # journal ids of the duplicated rows
    examples: list[str] = field(default_factory=list)

    def faults(self) -> dict[str, int]:
        return {"missing": self.missing, "duplicated": self.duplicated, "collapsed": self.collapsed,
                "altered": self.altered, "out_of_order": self.out_of_order,
                "journal_rows - influx_points": self.journal_rows - self.influx_points}

    def line(self) -> str:
        return (f"published {self.published}, acked {self.acked}, journal rows {self.journal_rows}, "
                f"InfluxDB points {self.influx_points}; " + ", ".join(f"{k} {v}" for k, v in self.faults().items()))


def _ms(r: Reading) -> int:
    return round(r.ts * 1000)


def _journal_side(t: Tally, rows: list[Reading], acked: set[tuple[str, int]], sent: set[tuple[str, int]]) -> None:
    per_msg: Counter[tuple[str, int]] = Counter()
    per_ts: Counter[tuple[str, int]] = Counter()
    order: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for r in rows:
        seq = decode(r.value)
        per_ts[(r.sensor, _ms(r))] += 1
        if seq is None or not r.good or (r.sensor, seq) not in sent:
            t.altered += 1
            t.examples.append(f"journal row {r.id} {r.sensor} @{_ms(r)}: {r.value} {r.note}")
            continue
        per_msg[(r.sensor, seq)] += 1
        if per_msg[(r.sensor, seq)] == 1:  # a copy is counted as duplicated, not again as out of order
            order[r.sensor].append((_ms(r), int(r.id or 0), seq))
        else:
            t.copies.append(int(r.id or 0))
    t.missing = len(acked - set(per_msg))
    t.duplicated = len(t.copies)
    t.collapsed = sum(c - 1 for c in per_ts.values() if c > 1)
    seqs = [[seq for _ts, _id, seq in sorted(v)] for v in order.values()]  # by time, then journal order
    t.out_of_order = sum(1 for x in seqs if any(b < a for a, b in itertools.pairwise(x)))
    if t.duplicated:
        t.examples += [f"{k} stored {c} times" for k, c in per_msg.items() if c > 1][:3]


def _influx_side(t: Tally, influx: InfluxD, db: str, rows: list[Reading]) -> None:
    at: dict[tuple[str, int], set[float | None]] = defaultdict(set)
    for r in rows:
        at[(r.sensor, _ms(r))].add(r.value)
    for p in influx.points(db, "readings"):
        if p.get("temperature") is not None and p["temperature"] not in at.get((p["sensor"], p["time"]), set()):
            t.altered += 1
            t.examples.append(f"InfluxDB point {p['sensor']} @{p['time']}: {p['temperature']}")


def tally(journal_path: Path, influx: InfluxD, db: str, pub: Publisher) -> Tally:
    """The figures, from the journal of a stopped daemon (through its public repository) and InfluxDB."""
    journal = Journal(journal_path)
    rows: list[Reading] = []
    while batch := journal.readings.read_after(int(rows[-1].id or 0) if rows else 0, 10_000):
        rows += batch
    acked = pub.acked()
    t = Tally(published=len(pub.sent), acked=len(acked), journal_rows=len(rows),
              influx_points=sum(influx_counts(influx, db).values()))
    _journal_side(t, rows, acked, {(s.sensor, s.seq) for s in pub.sent})
    _influx_side(t, influx, db, rows)
    return t
