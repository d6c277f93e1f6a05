"""Scenarios 3, 4 and 5 in one run: 500 MQTT sensors at 1 reading / 10 s through the real Daemon,
in a process of its own so that its memory, CPU time and disk writes are its alone.

- steady phase: every sensor in range; at its end, resident memory (VmRSS), CPU seconds per
  reading, and bytes per reading: growth of the journal with the WAL folded in at both ends
  (what a reading costs in storage), and block writes from /proc/<pid>/io (what it costs the
  SD card: whole pages per commit, fsyncs, checkpoints).
- alarm phase: `hot` sensors go above their zone's limit (delay 5 s, so the 2nd hot reading,
  10 s later, ends the delay); a recording notifier (registered here as `type: bench_record`,
  no core code touched) stamps each `send()`. Latency = send() time minus the time the
  publisher sent the reading that ended the delay (the newest one of that sensor at or before
  the alarm's `fired` timestamp): MQTT transit, journal commit, rules, alarm commit, outbox,
  dispatcher.

The child is bench/fleet_child.py, which imports nothing of the bench's own (no pytest, no
peers), so its memory is the daemon's.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import PY, BenchBroker, Result, check, proc_stat
from daemon.storage.journal import Journal

TOPIC = "bench/fleet/{}"
ZONES = 50


def config(tmp: Path, port: int, sensors: int, flush_interval: float) -> dict[str, Any]:
    return {
        "site": {"id": "bench", "name": "基准冷库"},
        "storage": {"journal": str(tmp / "journal.db"), "flush_interval": flush_interval},
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": f"bench-fleet-{os.getpid()}", "qos": 1},
        "zones": [{"id": f"z{z}", "name": f"{z}号库", "commodity": "mandarin",
                   "alarms": {"temperature": {"delay": 5, "clear_delay": 5}, "no_data": False}}
                  for z in range(min(ZONES, sensors))],
        "sensors": [{"id": f"s{i}", "zone": f"z{i % min(ZONES, sensors)}", "type": "mqtt", "format": "json",
                     "topic": TOPIC.format(i), "values": {"temperature": "temperature"}, "availability": False,
                     "interval": 10} for i in range(sensors)],
        "notifiers": [{"id": "rec", "type": "bench_record", "out": str(tmp / "sends.jsonl")}],
        "contacts": [{"id": "zhang", "name": "张师傅", "phone": "+8613800138000"}],
        "escalation": {"steps": [{"contacts": ["zhang"], "notifiers": ["rec"]}]},
        "api": {"enabled": False},
    }


# ---------------------------------------------------------------- parent


class Publisher:
    """Every sensor once per `period`, spread evenly; remembers when each message left."""

    def __init__(self, port: int, sensors: int, period: float) -> None:
        self.sensors, self.period = sensors, period
        self.hot: set[int] = set()
        self.sent: dict[int, list[float]] = {i: [] for i in range(sensors)}
        self.count = 0
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-fleet-pub-{os.getpid()}")
        self.c.max_inflight_messages_set(1000)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        gap = self.period / self.sensors
        nxt = time.monotonic()
        i = 0
        while not self._stop.is_set():
            k = i % self.sensors
            value = 12.0 if k in self.hot else 6.0 + (i % 10) / 10
            self.sent[k].append(time.time())
            self.c.publish(TOPIC.format(k), f'{{"temperature": {value}}}', qos=1)
            self.count += 1
            i += 1
            nxt += gap
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.c.disconnect()
        self.c.loop_stop()


def _files(tmp: Path) -> int:
    return sum(p.stat().st_size for p in tmp.glob("journal.db*"))


def _self_written() -> int:
    with open("/proc/self/io", encoding="utf-8") as f:
        return next(int(line.split(":")[1]) for line in f if line.startswith("write_bytes"))


def _checkpoint(tmp: Path) -> int:
    """Fold the WAL into the journal file (as the daemon's own autocheckpoint would, later); returns
    the bytes this process wrote doing it. Then file sizes mean stored data, not WAL warm-up."""
    import sqlite3

    before = _self_written()
    db = sqlite3.connect(tmp / "journal.db", timeout=30)
    for _ in range(50):
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            break
        time.sleep(0.02)
    db.close()
    return _self_written() - before


# long: one measurement told in order (start, warm-up, window, alarm phase, figures); the figures use its locals
def run(tmp: Path, sensors: int = 500, period: float = 10.0, steady: float = 40.0, hot: int = 150,
        alarm_phase: float = 30.0, flush_interval: float = 0.2, label: str = "") -> list[Result]:
    tmp.mkdir(parents=True, exist_ok=True)
    broker = BenchBroker(tmp / "mosq")
    broker.start()
    cfg_path = tmp / "fleet.json"
    cfg_path.write_text(json.dumps(config(tmp, broker.port, sensors, flush_interval)), encoding="utf-8")
    child = subprocess.Popen([PY, "-m", "bench.fleet_child", str(cfg_path)], stdout=subprocess.PIPE,
                             cwd=Path(__file__).resolve().parent.parent, text=True)
    pub: Publisher | None = None
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("fleet daemon did not start")
        pub = Publisher(broker.port, sensors, period)
        pub.start()
        time.sleep(min(period, steady / 3))  # every sensor seen once: series created, caches warm
        _checkpoint(tmp)
        j = Journal(tmp / "journal.db")
        s0, f0, n0 = proc_stat(child.pid), _files(tmp), j.readings.count()
        time.sleep(steady)
        s1, n1 = proc_stat(child.pid), j.readings.count()
        j.close()
        folded = _checkpoint(tmp)  # the WAL frames of the window, written into the journal file
        f1 = _files(tmp)
        pub.hot = set(range(0, sensors, max(1, sensors // hot)))
        time.sleep(alarm_phase)
        pub.hot = set()
        time.sleep(2)
    finally:
        if pub is not None:
            pub.stop()
        child.terminate()
        child.wait(60)
        broker.stop()
    readings = n1 - n0
    tick = os.sysconf("SC_CLK_TCK")
    cpu_s = (s1["cpu_ticks"] - s0["cpu_ticks"]) / tick
    written = s1.get("write_bytes", 0) - s0.get("write_bytes", 0) + folded
    growth = f1 - f0
    parts: dict[str, list[float]] = {}
    lat = latencies(tmp, pub.sent, parts)
    p99 = _pct(lat, 99) * 1000 if lat else float("nan")
    rss_mb = s1["VmRSS"] / 1024
    suffix = f" ({label})" if label else ""
    at = f"@{label}" if label else ""
    common = {"sensors": sensors, "period_s": period, "flush_interval_s": flush_interval}
    return [
        Result(key="alarm_latency" + at, title=f"3. alarm latency p99, {sensors} sensors{suffix}", value=p99,
               unit="ms", target="<= 50", met=check(p99, "<= 50") if lat else False,
               raw={**common, "alarms": len(lat), "p50_ms": round(_pct(lat, 50) * 1000, 1) if lat else None,
                    "p99_ms": round(p99, 1), "max_ms": round(max(lat) * 1000, 1) if lat else None,
                    "median_ms_by_stage": {k: round(_pct(v, 50) * 1000, 1) for k, v in parts.items()},
                    "p99_ms_by_stage": {k: round(_pct(v, 99) * 1000, 1) for k, v in parts.items()}}),
        Result(key="memory" + at, title=f"4. resident memory, {sensors} sensors at 1/{period:g} s{suffix}",
               value=rss_mb, unit="MB", target="<= 60", met=check(rss_mb, "<= 60"),
               raw={**common, "rss_mb": round(rss_mb, 1), "peak_rss_mb": round(s1["VmHWM"] / 1024, 1),
                    "cpu_ms_per_reading": round(1000 * cpu_s / max(readings, 1), 3),
                    "cpu_percent_of_one_core": round(100 * cpu_s / steady, 1), "readings": readings}),
        # the card's budget is what the process writes, on a year-old journal: scenario 8 (bench/flash.py);
        # file growth is what the card keeps, and a young journal hides the per-series pages
        Result(key="disk" + at, title=f"5. bytes the daemon wrote per reading, young journal{suffix}",
               value=written / max(readings, 1), unit="B", target="n/a (see 8.)", met=None,
               raw={**common, "readings": readings, "file_growth_bytes": growth,
                    "file_growth_bytes_per_reading": round(growth / max(readings, 1), 1),
                    "block_writes_bytes": written,
                    "block_writes_bytes_per_reading": round(written / max(readings, 1), 1)},
               notes=["growth = journal file after folding the WAL in (checkpoint) at both ends of the window; "
                      "block writes = what the daemon process (and the closing checkpoint) really wrote to the "
                      "device, from /proc/<pid>/io: the SD card's wear"]),
    ]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def latencies(tmp: Path, sent: dict[int, list[float]], parts: dict[str, list[float]] | None = None) -> list[float]:
    """send() time minus the publish time of the reading that ended each alarm's delay; `parts`
    gets the stages: publish -> emit() (MQTT), emit() -> committed (pipeline), committed -> alarm
    stored (rules + alarm commit), alarm stored -> send() (dispatcher)."""
    path = tmp / "sends.jsonl"
    if not path.exists():
        return []
    st_path = tmp / "stages.json"
    stages = json.loads(st_path.read_text(encoding="utf-8")) if st_path.exists() else {"emits": {}, "fired": {}}
    sends = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    j = Journal(tmp / "journal.db")
    fired = {a.id: a for a in j.alerts.find(limit=100_000) if a.fired is not None}
    j.close()
    out = []
    for s in sends:
        a = fired.get(s["alert_id"])
        if a is None or a.fired is None or not s["key"].startswith("alert.") or a.sensor is None:
            continue
        pubs = [t for t in sent.get(int(a.sensor[1:]), []) if t <= a.fired]
        if not pubs:
            continue
        out.append(s["t"] - pubs[-1])
        emit = next((e for e in stages["emits"].get(a.sensor, []) if e[0] >= pubs[-1]), None)
        stored = stages["fired"].get(str(a.id))
        if parts is not None and emit is not None and stored is not None:
            for name, v in (("mqtt", emit[0] - pubs[-1]), ("journal_commit", emit[1] - emit[0]),
                            ("rules_and_alarm_commit", stored - emit[1]), ("dispatcher", s["t"] - stored)):
                parts.setdefault(name, []).append(v)
    return out


