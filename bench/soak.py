"""The soak: the real daemon for a long time under a heavy but realistic load, with faults cycling,
and exact counts at the end (docs/robustness.md, "Soak").

    python -m bench.soak --minutes 45            # or: make soak MINUTES=45
    python -m bench.soak --minutes 45 --out DIR  # keep the journal, logs, samples and report in DIR

- peers: Mosquitto with persistence (so the daemon's persistent QoS 1 session survives a broker
  restart) and the deep queues of docs/benchmarks.md; InfluxDB 1.6.7 as the sink.
- the daemon: bench/soak_child.py, the real Daemon in a process of its own with the API on (/metrics
  is scraped) and a recording notifier; default storage settings (flush_interval 60 s since session 12, 5 s in
  session 11, 0.2 before).
- load: `sensors` MQTT sensors in `zones` rooms, each publishing every 2-5 s (QoS 1, JSON). Each
  message carries its own time in ms (`timestamp: {path: ts, format: epoch_ms}`, trusted), so a
  reading is (sensor, ms) and every one published can be found, once, in the journal and in InfluxDB.
- faults, in cycles: a hot spell on one room (every sensor of it above the limit, then back), the
  broker restarted, a sensor silent (no-data alarm) then back, InfluxDB stopped then started
  (backfill), and once the daemon stopped with SIGTERM and started again.
- every `sample_every` s: the daemon's VmRSS, open fds, threads, CPU time and block writes from
  /proc/<pid>, the journal and WAL sizes, and /metrics (forwarder and rollup lag, error counters).
- at the end, publishing stops and the soak waits (bounded) for the journal, the backfill and the
  alarms to settle, stops the daemon, and counts: readings lost and duplicated, journal vs
  InfluxDB, alarms vs faults injected, SMS per alarm; memory, fds, threads, CPU, disk per reading.

Counts are exact; timings are reported, never asserted (tests/soak/test_soak_short.py).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import BROKER_TUNING, PY, InfluxD, machine, proc_stat
from bench.ingest import queued_session
from daemon.ports.clock import clock_synchronised
from tests.peers import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "soak/{}"
CLIENT_ID = "soak-daemon"
DB = "soak"
NORMAL, HOT = 6.0, 12.0  # mandarin: 5-8 °C
_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))


# ---------------------------------------------------------------- what to run


@dataclass(frozen=True)
class Plan:
    """Sizes and times (seconds) of one soak. Faults repeat every `cycle` from `warmup`, offsets within
    the cycle; a fault that would not end `tail` seconds before the end is left out. `restart_at` is the
    daemon's stop and start, once, in the first cycle."""

    minutes: float
    sensors: int = 200
    zones: int = 4
    period_min: float = 2.0
    period_max: float = 5.0
    warmup: float = 120.0
    cycle: float = 900.0
    hot_at: float = 60.0
    hot_len: float = 360.0
    broker_at: float = 180.0
    broker_down: float = 10.0
    silence_at: float = 300.0
    silence_len: float = 180.0
    influx_at: float = 480.0
    influx_len: float = 240.0
    restart_at: float | None = 660.0
    delay: float = 120.0  # temperature alarm delay and clear delay of every room
    clear_delay: float = 60.0
    stale_after: float = 60.0  # no-data after this: a broker restart's seconds are not a silence
    sample_every: float = 10.0
    tail: float = 60.0
    settle: float = 300.0  # longest wait at the end for each of: journal, backfill, alarms

    @property
    def duration(self) -> float:
        return self.minutes * 60


def short_plan() -> Plan:
    """The CI variant: every fault once in under a minute of load, 40 sensors."""
    return Plan(minutes=0.8, sensors=40, zones=4, period_min=1.0, period_max=2.0, warmup=6, cycle=1000,
                hot_at=0, hot_len=12, broker_at=4, broker_down=1, silence_at=8, silence_len=14, influx_at=14,
                influx_len=8, restart_at=26, delay=2, clear_delay=2, stale_after=6, sample_every=2, tail=6,
                settle=60)


@dataclass
class Fault:
    kind: str  # hot | broker | silence | influx | restart
    target: str  # zone, sensor or peer
    start: float  # seconds from the start of the run (planned; `done` holds when it really happened)
    end: float
    done: dict[str, float] = field(default_factory=dict)  # wall-clock times of its actions


def schedule(plan: Plan) -> list[Fault]:
    out: list[Fault] = []
    k = 0
    while (base := plan.warmup + k * plan.cycle) < plan.duration:
        zone = k % plan.zones
        silent = (k + 1) % plan.zones + plan.zones * k  # a sensor of another room than the hot one
        for kind, at, length, target in (
                ("hot", plan.hot_at, plan.hot_len, f"z{zone}"),
                ("broker", plan.broker_at, plan.broker_down, "mosquitto"),
                ("silence", plan.silence_at, plan.silence_len, f"s{silent % plan.sensors}"),
                ("influx", plan.influx_at, plan.influx_len, "influxd"),
                ("restart", plan.restart_at if k == 0 else None, 0.0, "daemon")):
            if at is not None and base + at + length <= plan.duration - plan.tail:
                out.append(Fault(kind, target, base + at, base + at + length))
        k += 1
    return sorted(out, key=lambda f: f.start)


def config(tmp: Path, plan: Plan, mqtt_port: int, influx_url: str, api_port: int) -> dict[str, Any]:
    alarms = {"temperature": {"delay": plan.delay, "clear_delay": plan.clear_delay}}
    return {
        "site": {"id": "soak", "name": "耐久测试冷库"},
        "storage": {"journal": str(tmp / "journal.db")},  # defaults otherwise: flush_interval 60, reserve 8 MB
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": CLIENT_ID, "qos": 1},
        "zones": [{"id": f"z{z}", "name": f"{z + 1}号库", "commodity": "mandarin", "alarms": alarms}
                  for z in range(plan.zones)],
        "sensors": [{"id": f"s{i}", "zone": f"z{i % plan.zones}", "type": "mqtt", "format": "json",
                     "topic": TOPIC.format(i), "values": {"temperature": "temperature"},
                     "timestamp": {"path": "ts", "format": "epoch_ms"}, "trust_device_time": True,
                     "availability": False, "interval": period(plan, i), "stale_after": plan.stale_after}
                    for i in range(plan.sensors)],
        "sinks": [{"id": "influx", "type": "influxdb1", "url": influx_url, "database": DB}],
        "notifiers": [{"id": "rec", "type": "soak_record", "out": str(tmp / "sends.jsonl")}],
        "contacts": [{"id": "zhang", "name": "张师傅", "phone": "+8613800138000"},
                     {"id": "li", "name": "Manager Li", "phone": "+8613900139000", "language": "en"}],
        "escalation": {"steps": [{"contacts": ["zhang", "li"], "notifiers": ["rec"]}]},
        "api": {"enabled": True, "host": "127.0.0.1", "port": api_port},
    }


def period(plan: Plan, i: int) -> float:
    """Sensor i's publishing period, spread over [period_min, period_max]."""
    return round(plan.period_min + (plan.period_max - plan.period_min) * ((i * 37) % 101) / 100, 3)


# ---------------------------------------------------------------- peers


class SoakBroker(Mosquitto):
    """Mosquitto with persistence: a restart keeps the daemon's session and its queued QoS 1 messages."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        user = "user root\n" if os.geteuid() == 0 else ""  # root would drop to `mosquitto`: no access to root
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {root}/\nautosave_interval 60\n{user}{BROKER_TUNING}", encoding="utf-8")


# ---------------------------------------------------------------- the sensors


def _acked(info: paho.MQTTMessageInfo) -> bool:
    """The broker acknowledged it. Not is_published(): that raises for a message queued while the connection
    was down (its rc stays NO_CONN), though paho sends it after the reconnect and marks it published."""
    return bool(info._published)


class Publisher:
    """Every sensor on its own period (QoS 1), a device time in ms in each payload. `hot` zones publish
    HOT, `silent` sensors nothing. Remembers what it published and what was in flight when the
    connection dropped (paho resends those: the broker may then hold them twice, by the protocol)."""

    def __init__(self, plan: Plan, port: int) -> None:
        self.plan = plan
        self.hot: set[str] = set()
        self.silent: set[str] = set()
        self.published: dict[int, list[int]] = {i: [] for i in range(plan.sensors)}
        self.count = 0
        self.in_doubt: set[tuple[int, int]] = set()
        self.disconnects = 0
        self._pending: list[tuple[paho.MQTTMessageInfo, tuple[int, int]]] = []
        self._lock = threading.Lock()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-sensors-{os.getpid()}")
        self.c.max_inflight_messages_set(1000)
        self.c.reconnect_delay_set(1, 2)
        self.c.on_disconnect = self._on_disconnect
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-publisher", daemon=True)

    def _on_disconnect(self, *_: Any) -> None:
        with self._lock:
            self.disconnects += 1
            self.in_doubt.update(k for info, k in self._pending if not _acked(info))

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        heap = [(t0 + period(self.plan, i) * ((i * 7919) % 1000) / 1000, i) for i in range(self.plan.sensors)]
        heapq.heapify(heap)
        last = [0] * self.plan.sensors
        n = 0
        while not self._stop.is_set():
            due, i = heap[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 0.5))
                continue
            heapq.heapreplace(heap, (due + period(self.plan, i), i))
            sid = f"s{i}"
            if sid in self.silent:
                continue
            ts = max(int(time.time() * 1000), last[i] + 1)
            last[i] = ts
            n += 1
            value = HOT if f"z{i % self.plan.zones}" in self.hot else NORMAL + (n % 10) / 10
            drops = self.disconnects
            info = self.c.publish(TOPIC.format(i), json.dumps({"temperature": value, "ts": ts}), qos=1)
            with self._lock:
                if self.disconnects != drops and not _acked(info):  # the drop came while publish() ran
                    self.in_doubt.add((i, ts))
                self.published[i].append(ts)
                self.count += 1
                self._pending.append((info, (i, ts)))
                if len(self._pending) > 5000:
                    self._pending = [p for p in self._pending if not _acked(p[0])]

    def stop(self, timeout: float) -> int:
        """Stop publishing; wait until the broker acknowledged everything. Returns the unacknowledged."""
        self._stop.set()
        self._thread.join(10)
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                self._pending = [p for p in self._pending if not _acked(p[0])]
                left = len(self._pending)
            if not left or time.monotonic() >= end:
                break
            time.sleep(0.2)
        self.c.disconnect()
        self.c.loop_stop()
        return left


# ---------------------------------------------------------------- the daemon


class Child:
    """bench/soak_child.py in its own process; its CPU time from wait4() once it ended."""

    def __init__(self, tmp: Path, cfg_path: Path) -> None:
        self.tmp, self.cfg_path = tmp, cfg_path
        self.proc: subprocess.Popen[str] | None = None
        self.ended: list[dict[str, Any]] = []  # per finished process: pid, cpu_s, exit status, block writes
        self.api_port = 0
        self._last: dict[str, int] = {}

    def start(self) -> None:
        log = (self.tmp / "daemon.log").open("a", encoding="utf-8")
        self.proc = subprocess.Popen([PY, "-m", "bench.soak_child", str(self.cfg_path)], stdout=subprocess.PIPE,
                                     stderr=log, cwd=ROOT, text=True)
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"the daemon did not start: see {self.tmp / 'daemon.log'}")
        self.api_port = int(line[1])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stat(self) -> dict[str, int]:
        s = proc_stat(self.pid)
        self._last = s
        return s

    def stop(self) -> None:
        """SIGTERM, as systemd stops it; the clean stop must acknowledge what it stored."""
        assert self.proc is not None
        with contextlib.suppress(OSError):
            self._last = proc_stat(self.pid)  # /proc/<pid>/io is gone once reaped
        self.proc.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(self.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.ended.append({"pid": self.pid, "exit": self.proc.returncode, "cpu_s": ru.ru_utime + ru.ru_stime,
                           "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
                           "write_bytes": self._last.get("write_bytes", 0)})
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


# ---------------------------------------------------------------- samples


def _metrics(port: int) -> dict[str, float] | None:
    """The daemon's /metrics: unlabelled series, plus the lags and open alarms."""
    try:
        resp = _http.request("GET", f"http://127.0.0.1:{port}/metrics")
    except urllib3.exceptions.HTTPError:
        return None
    if resp.status != 200:
        return None
    out: dict[str, float] = {}
    for line in resp.data.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.match(r"coldchain_(\w+)(\{[^}]*\})? (\S+)$", line)
        if not m:
            continue
        name, labels, value = m.groups()
        if labels is None:
            out[name] = float(value)
        elif name == "journal_lag_readings" and 'sink="sink:' in labels:  # reading cursors, not events:
            out["forward_lag"] = out.get("forward_lag", 0) + float(value)
        elif name == "alarms" and re.search(r'state="(pending|firing|acknowledged)"', labels):
            out["alarms_open"] = out.get("alarms_open", 0) + float(value)
        elif name == "outbox_messages" and re.search(r'state="(pending|sending)"', labels):
            out["outbox_waiting"] = out.get("outbox_waiting", 0) + float(value)
    return out


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def _count(p: Path, pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/{p}"))


def _tcp(roles: dict[int, str]) -> dict[int, str]:
    """Socket inode -> what the connection is: `listen`, or the role of the port at either end."""
    out: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as f:
            for line in list(f)[1:]:
                col = line.split()
                local, remote, state, inode = int(col[1].rsplit(":", 1)[1], 16), \
                    int(col[2].rsplit(":", 1)[1], 16), col[3], int(col[9])
                out[inode] = "listen" if state == "0A" else roles.get(remote) or roles.get(local) or "tcp other"
    return out


def fd_kinds(pid: int, roles: dict[int, str]) -> dict[str, int]:
    """Open fds by what they are: journal files, TCP connections by peer (mqtt, influx, api), unix sockets
    (asyncio's self-pipe ...), pipes, epoll/eventfd, other files."""
    out: Counter[str] = Counter()
    tcp = _tcp(roles)
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            kind = tcp.get(int(target[8:-1]), "unix")
        else:
            kind = ("journal" if "journal.db" in target else "pipe" if target.startswith("pipe:") else
                    "anon" if target.startswith("anon_inode:") else "file")
        out[kind] += 1
    return dict(out)


def _read(journal: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y) points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), per hour."""
    s = slope(points)
    return None if s is None else 3600 * s


# ---------------------------------------------------------------- the run


class Soak:
    def __init__(self, tmp: Path, plan: Plan, log: Any = None) -> None:
        self.tmp, self.plan = tmp, plan
        self.faults = schedule(plan)
        self.samples: list[dict[str, Any]] = []
        self.events: list[tuple[float, str]] = []
        self.scrape_failures = 0
        self._out = log
        tmp.mkdir(parents=True, exist_ok=True)
        self.journal = tmp / "journal.db"

    def say(self, what: str) -> None:
        t = time.time() - self.t0 if hasattr(self, "t0") else 0.0
        self.events.append((round(t, 1), what))
        if self._out is not None:
            print(f"[{time.strftime('%H:%M:%S')} +{t:7.1f}s] {what}", file=self._out, flush=True)

    def run(self) -> dict[str, Any]:
        plan = self.plan
        facts = machine()
        self.broker = SoakBroker(self.tmp / "mosquitto")
        self.influx = InfluxD(self.tmp / "influxd")
        self.broker.start()
        self.influx.start()
        self.influx.create_database(DB)
        from tests.conftest import free_port

        cfg_path = self.tmp / "soak.json"
        cfg_path.write_text(json.dumps(config(self.tmp, plan, self.broker.port, self.influx.url, free_port()),
                                       ensure_ascii=False), encoding="utf-8")
        self.child = Child(self.tmp, cfg_path)
        self.pub: Publisher | None = None
        # The daemon's session exists before its first start, as on a box that ran before: "ready" does not wait
        # for the SUBACK, and a reading published before it had no session to wait in (one of 1,324 was "lost"
        # that way in a short soak). From here on the broker queues every reading for the daemon.
        queued_session(self.broker.port, CLIENT_ID, [TOPIC.format(i) for i in range(plan.sensors)])
        self._samples_file = (self.tmp / "samples.jsonl").open("a", encoding="utf-8")
        try:
            self.child.start()
            self.t0 = time.time()
            self.say(f"daemon pid {self.child.pid} ready; {plan.sensors} sensors, {len(self.faults)} faults planned")
            self.pub = Publisher(plan, self.broker.port)
            self.pub.start()
            self._loop()
            self._settle()
            self.broker.stop()
            report = self._report(facts)
        finally:
            if self.pub is not None and not self.pub._stop.is_set():
                self.pub.stop(5)
            if self.child.proc is not None:
                self.child.stop()
            self.broker.stop()
            self.influx.stop()
            self._samples_file.close()
        (self.tmp / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        return report

    # -- during the run

    def _actions(self) -> list[tuple[float, str, Fault]]:
        out = []
        for f in self.faults:
            out.append((f.start, "start", f))
            if f.kind != "restart":
                out.append((f.end, "end", f))
        return sorted(out, key=lambda a: a[0])

    def _loop(self) -> None:
        actions = self._actions()
        next_sample = 0.0
        while (t := time.time() - self.t0) < self.plan.duration:
            while actions and actions[0][0] <= t:
                _, what, f = actions.pop(0)
                self._act(what, f)
            if t >= next_sample:
                self.sample()
                next_sample += self.plan.sample_every
            nxt = min([next_sample, self.plan.duration] + ([actions[0][0]] if actions else []))
            time.sleep(max(0.0, min(1.0, nxt - (time.time() - self.t0))))

    def _act(self, what: str, f: Fault) -> None:
        assert self.pub is not None
        f.done[what] = time.time()
        self.say(f"{f.kind} {f.target}: {what}")
        if f.kind == "hot":
            (self.pub.hot.add if what == "start" else self.pub.hot.discard)(f.target)
        elif f.kind == "silence":
            (self.pub.silent.add if what == "start" else self.pub.silent.discard)(f.target)
        elif f.kind == "broker":
            self.broker.stop() if what == "start" else self.broker.start()
        elif f.kind == "influx":
            self.influx.stop() if what == "start" else self.influx.start()
        elif f.kind == "restart":
            self.quiet_samples()
            self.child.stop()
            self.say(f"daemon stopped (exit {self.child.ended[-1]['exit']}); starting again")
            self.child.start()
            f.done["end"] = time.time()
            self.say(f"daemon pid {self.child.pid} ready")

    def quiet_samples(self) -> None:
        """Three samples a second apart, tagged `end`: the level a process is back to, transients aside."""
        for k in range(3):
            self.sample(tag="end")
            if k < 2:
                time.sleep(1)

    def _thread_names(self, pid: int) -> dict[str, int]:
        """The child's Python threads by name (it writes them on SIGUSR1)."""
        path = self.tmp / "threads.jsonl"
        seen = _size(path)
        os.kill(pid, signal.SIGUSR1)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if _size(path) > seen and (text := path.read_text(encoding="utf-8")).endswith("\n"):
                return dict(json.loads(text.splitlines()[-1])["threads"])
            time.sleep(0.01)
        return {}

    def sample(self, tag: str = "") -> None:
        pid = self.child.pid
        try:
            names = self._thread_names(pid)
            s = self.child.stat()
            roles = {self.broker.port: "mqtt", self.influx.port: "influx", self.child.api_port: "api"}
            fds, threads, kinds = _count(Path("fd"), pid), _count(Path("task"), pid), fd_kinds(pid, roles)
        except OSError:
            return
        m = _metrics(self.child.api_port)
        if m is None:
            self.scrape_failures += 1
        prev_cpu = sum(e["cpu_s"] for e in self.child.ended)
        self.samples.append({
            "t": round(time.time() - self.t0, 1), "pid": pid, "rss_kb": s["VmRSS"], "hwm_kb": s.get("VmHWM", 0),
            "fds": fds, "fd_kinds": kinds, "threads": threads, "python_threads": names,
            "cpu_s": round(s["cpu_ticks"] / os.sysconf("SC_CLK_TCK"), 2),
            "cpu_total_s": round(prev_cpu + s["cpu_ticks"] / os.sysconf("SC_CLK_TCK"), 2),
            "write_bytes": s.get("write_bytes", 0),
            "journal_bytes": _size(self.journal), "wal_bytes": _size(self.journal.with_name("journal.db-wal")),
            "published": self.pub.count if self.pub else 0, "load1": os.getloadavg()[0], "metrics": m, "tag": tag,
        })
        self._samples_file.write(json.dumps(self.samples[-1]) + "\n")  # as it goes: a long run may not end well
        self._samples_file.flush()

    # -- the end

    def _wait(self, check: Any, what: str) -> bool:
        end = time.monotonic() + self.plan.settle
        while time.monotonic() < end:
            if check():
                self.say(f"settled: {what}")
                return True
            time.sleep(1)
        self.say(f"NOT settled after {self.plan.settle:g} s: {what}")
        return False

    def _settle(self) -> None:
        """Faults are over: with the sensors still publishing, wait for the backfill and the alarms to clear;
        then stop publishing and wait for the last readings in the journal and in InfluxDB. (A no-data alarm
        after publishing stopped is the end of the run, not a fault: counted apart.)"""
        assert self.pub is not None
        pub = self.pub

        def caught_up(most: int) -> bool:
            m = _metrics(self.child.api_port)
            return m is not None and m.get("forward_lag", most + 1) <= most

        def quiet() -> bool:
            m = _metrics(self.child.api_port)
            return m is not None and m.get("alarms_open") == 0 and m.get("outbox_waiting") == 0

        self.settled = {
            "backfill": self._wait(lambda: caught_up(self.plan.sensors), "InfluxDB caught up (still publishing)"),
            "alarms": self._wait(quiet, "no alarm open, no message waiting"),
        }
        left = pub.stop(self.plan.settle)
        self.t_stop = time.time()
        self.say(f"publishing stopped: {pub.count} published, {left} not acknowledged by the broker")
        self.settled["journal"] = self._wait(
            lambda: _read(self.journal, "SELECT COUNT(*) FROM readings")[0][0] >= pub.count,
            "every published reading journaled")
        self.settled["influx"] = self._wait(lambda: caught_up(0), "every journaled reading forwarded")
        self.quiet_samples()
        self.t_end = time.time() - self.t0
        self.child.stop()
        self.say(f"daemon stopped (exit {self.child.ended[-1]['exit']})")

    # -- counting

    def _report(self, facts: dict[str, str]) -> dict[str, Any]:
        assert self.pub is not None
        plan = self.plan
        rows = _read(self.journal, "SELECT CAST(substr(s.sensor, 2) AS INTEGER), r.ts_ms, COUNT(*) FROM readings r "
                                   "JOIN series s ON s.id = r.series WHERE s.quantity = 'temperature' "
                                   "GROUP BY r.series, r.ts_ms")
        journaled = {(i, ts): n for i, ts, n in rows}
        published = {(i, ts) for i, tss in self.pub.published.items() for ts in tss}
        lost = sorted(published - journaled.keys())
        dups = {k: n for k, n in journaled.items() if n > 1}
        unexpected = sorted(journaled.keys() - published)
        faults_stored = _read(self.journal, "SELECT COUNT(*) FROM readings WHERE quality != 0")[0][0]
        readings = {
            "published": len(published), "journal_rows": sum(journaled.values()), "lost": len(lost),
            "duplicated": sum(n - 1 for n in dups.values()),
            "duplicated_in_doubt_at_publisher": sum(n - 1 for k, n in dups.items() if k in self.pub.in_doubt),
            "in_doubt_at_publisher": len(self.pub.in_doubt), "publisher_disconnects": self.pub.disconnects,
            "not_published_by_us": len(unexpected), "fault_readings": faults_stored,
            "lost_examples": [f"s{i}@{ts}" for i, ts in lost[:10]],
            "duplicated_examples": [f"s{i}@{ts} x{n}" for (i, ts), n in list(dups.items())[:10]],
        }
        influx = self._influx(set(journaled))
        alarms, sms = self._alarms()
        return {
            "machine": facts, "plan": asdict(plan), "duration_s": round(self.t_end, 1),
            "faults": [{"kind": f.kind, "target": f.target, "start_s": round(f.start), "end_s": round(f.end)}
                       for f in self.faults],
            "settled": self.settled, "readings": readings, "influx": influx, "alarms": alarms, "sms": sms,
            **self._resources(len(published), sum(journaled.values())),
            "log": self._log_summary(), "events": self.events,
        }

    def _influx(self, keys: set[tuple[int, int]]) -> dict[str, Any]:
        points: set[tuple[int, int]] = set()
        for i in range(self.plan.sensors):
            for s in self.influx.query(f"SELECT temperature FROM readings WHERE sensor = 's{i}'", DB):  # noqa: S608 - i is an int from range()
                points |= {(i, int(row[0])) for row in s["values"]}
        missing, extra = keys - points, points - keys
        return {"points": len(points), "missing": len(missing), "extra": len(extra),
                "exactly_once": not missing and not extra,
                "missing_examples": [f"s{i}@{ts}" for i, ts in sorted(missing)[:10]]}

    def _alarms(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Each hot spell must raise and clear one temp_high alarm per sensor of its room, each silence one
        no_data alarm; nothing else. Each fired alarm: one alarm SMS and one resolve SMS per contact."""
        cols = "id, key, zone, sensor, kind, state, started, fired, resolved"
        rows = [dict(zip(cols.split(", "), r, strict=True)) for r in _read(self.journal, f"SELECT {cols} FROM alerts")]  # noqa: S608 - cols is a constant
        expected: list[tuple[str, str, Fault]] = []
        for f in self.faults:
            if f.kind == "hot":
                expected += [("temp_high", f"s{i}", f) for i in range(self.plan.sensors)
                             if f"z{i % self.plan.zones}" == f.target]
            elif f.kind == "silence":
                expected.append(("no_data", f.target, f))
        matched: set[int] = set()
        missing, unresolved = [], []
        slack = self.plan.period_max + 5
        for kind, sensor, f in expected:
            start, end = f.done.get("start", self.t0 + f.start), f.done.get("end", self.t0 + f.end)
            hit = [r for r in rows if r["kind"] == kind and r["sensor"] == sensor and r["id"] not in matched
                   and start - slack <= r["started"] <= end + slack]
            if not hit or hit[0]["fired"] is None:
                missing.append(f"{kind} {sensor} ({f.kind} at {f.start:.0f} s)")
                continue
            matched.add(hit[0]["id"])
            if hit[0]["state"] != "resolved":
                unresolved.append(f"{kind} {sensor}: {hit[0]['state']}")
        after = [r for r in rows if r["id"] not in matched and r["kind"] == "no_data" and r["fired"] is not None
                 and r["fired"] >= self.t_stop]
        # an hour after a start, the daemon raises its clock alarm when the kernel says the clock is not synchronised
        # (build machines often do): the box's own finding, not the soak's fault, counted apart
        unsynced = clock_synchronised() is False
        clock = [r for r in rows if unsynced and r["id"] not in matched and r["key"] == "_site/box/clock"]
        others = [r for r in rows if r["id"] not in matched and r not in after and r not in clock]
        alarms = {
            "expected": len(expected), "fired_and_matched": len(matched),
            "resolved": sum(1 for r in rows if r["id"] in matched and r["state"] == "resolved"),
            "missing": missing, "unresolved": unresolved,
            "unexpected": [f"{r['kind']} {r['zone']}/{r['sensor']} {r['state']} started +{r['started'] - self.t0:.0f} s"
                           for r in others],
            "no_data_after_publishing_stopped": len(after), "clock_unsynchronised": len(clock),
            "by_kind": dict(Counter(r["kind"] for r in rows)),
        }
        sends = [json.loads(line) for line in (self.tmp / "sends.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()] if (self.tmp / "sends.jsonl").exists() else []
        per = Counter((s["alert_id"], "resolve" if s["key"] == "resolve" else "alarm", s["contact"]) for s in sends)
        twice = [f"alert {a} {k} to {c} x{n}" for (a, k, c), n in per.items() if n > 1]
        contacts = ("zhang", "li")
        fired = [r["id"] for r in rows if r["fired"] is not None]
        not_told = [f"alert {a} {k} to {c}" for a in fired for k in ("alarm", "resolve") for c in contacts
                    if per[(a, k, c)] == 0 and (k == "alarm" or any(r["id"] == a and r["state"] == "resolved"
                                                                    for r in rows))]
        outbox = dict(_read(self.journal, "SELECT state, COUNT(*) FROM outbox GROUP BY state"))
        sms = {"recorded": len(sends), "alarms_fired": len(fired), "sent_twice": twice, "missing": not_told,
               "outbox_states": outbox, "same_outbox_id_twice": sum(n - 1 for n in
                                                                   Counter(s["outbox_id"] for s in sends).values())}
        return alarms, sms

    def _levels(self, pid: int) -> dict[str, Any]:
        """A process's fds (by kind) and threads after its warm-up and at its quiet end (the lowest of the
        `end` samples: a transient connection or file is not a level); Python thread names from the child."""
        xs = [x for x in self.samples if x["pid"] == pid]

        def at(sample: dict[str, Any]) -> dict[str, Any]:
            return {"t": sample["t"], "fds": sample["fds"], "threads": sample["threads"], "rss_mb":
                    round(sample["rss_kb"] / 1024, 1), **sample["fd_kinds"], "python_threads": sample["python_threads"]}

        warm = next((x for x in xs if x["t"] >= xs[0]["t"] + self.plan.warmup and not x["tag"]), xs[0])
        ends = [x for x in xs if x["tag"] == "end"] or xs[-1:]
        end = at(min(ends, key=lambda x: x["threads"]))  # with its own thread names
        for x in ends:
            for k, v in x["fd_kinds"].items():
                end[k] = min(end.get(k, v), v)
            end["fds"] = min(end["fds"], x["fds"])
        return {"start": at(xs[0]), "after_warmup": at(warm), "end": end}

    def _resources(self, published: int, stored: int) -> dict[str, Any]:
        s = self.samples
        last_pid = s[-1]["pid"]
        proc = [x for x in s if x["pid"] == last_pid]
        half = self.plan.duration / 2  # the loaded time: faults and all
        second = [(x["t"], x["rss_kb"] / 1024) for x in proc if half <= x["t"] <= self.plan.duration]
        rss_slope = slope_per_hour(second)
        growth = slope([(x["published"], x["journal_bytes"] + x["wal_bytes"]) for x in s
                        if half <= x["t"] <= self.plan.duration])
        cpu = sum(e["cpu_s"] for e in self.child.ended)
        written = sum(e["write_bytes"] for e in self.child.ended)
        processes = [{**e, "levels": self._levels(e["pid"])} for e in self.child.ended]
        first, last = processes[0]["levels"], processes[-1]["levels"]
        ms = [x["metrics"] for x in s if x["metrics"]]
        journal_end = _size(self.journal) + _size(self.journal.with_name("journal.db-wal"))
        return {
            "memory": {"rss_start_mb": first["start"]["rss_mb"], "rss_after_warmup_mb": last["after_warmup"]["rss_mb"],
                       "rss_end_mb": last["end"]["rss_mb"], "rss_max_mb": round(max(x["rss_kb"] for x in s) / 1024, 1),
                       "slope_mb_per_hour_second_half": None if rss_slope is None else round(rss_slope, 2),
                       "second_half_samples": len(second)},
            "fds": {"start": first["start"]["fds"], "after_warmup": last["after_warmup"]["fds"],
                    "end": last["end"]["fds"], "max": max(x["fds"] for x in s)},
            "threads": {"start": first["start"]["threads"], "after_warmup": last["after_warmup"]["threads"],
                        "end": last["end"]["threads"], "max": max(x["threads"] for x in s)},
            "processes": processes,
            "cpu": {"seconds": round(cpu, 1), "ms_per_reading": round(1000 * cpu / max(stored, 1), 3),
                    "percent_of_one_core": round(100 * cpu / max(self.t_end, 1), 1)},
            "disk": {"journal_bytes_end": journal_end, "bytes_per_reading": round(journal_end / max(stored, 1), 1),
                     "growth_bytes_per_reading_second_half": None if growth is None else round(growth, 1),
                     "wal_max_bytes": max(x["wal_bytes"] for x in s),
                     "block_writes_bytes_per_reading": round(written / max(stored, 1), 1)},
            "metrics": {"scrapes": len(ms), "failed_scrapes": self.scrape_failures,
                        "forward_lag_max": max((m.get("forward_lag", 0) for m in ms), default=None),
                        "rollup_lag_max": max((m.get("rollup_lag_readings", 0) for m in ms), default=None),
                        **{k: max((m.get(k, 0) for m in ms), default=None)
                           for k in ("journal_write_errors_total", "driver_crashes_total", "task_errors_total",
                                     "subscriber_errors_total", "forward_rejected_total", "alarm_write_errors_total")}},
            "load_average": {"min": min(x["load1"] for x in s), "max": max(x["load1"] for x in s),
                             "mean": round(sum(x["load1"] for x in s) / len(s), 2)},
            "readings_per_s": round(published / max(self.plan.duration, 1), 1),
        }

    def _log_summary(self) -> dict[str, Any]:
        text = (self.tmp / "daemon.log").read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [ln for ln in text if " ERROR " in ln or "Traceback" in ln]
        warnings = Counter(re.sub(r"^\S+ \S+ ", "", ln)[:100] for ln in text if " WARNING " in ln)
        return {"lines": len(text), "errors": len(errors), "first_errors": errors[:10],
                "warnings": dict(warnings.most_common(15))}


EXECUTOR_MAX = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor (asyncio.to_thread)


SINK_POOL_MAX = 3  # an InfluxDB sink's threads: max_in_flight (2) batches + alarm events (drivers/sinks/influxdb)


def _pooled(threads: dict[str, int]) -> int:
    """Threads of the pools that grow on demand: asyncio's default executor and the InfluxDB sinks' own."""
    return sum(n for name, n in threads.items() if name == "asyncio" or name.startswith("influxdb"))


def not_back(report: dict[str, Any]) -> list[str]:
    """What did not come back to its level at the quiet end of each daemon process (empty: all did).

    - every thread but the default executor's (`asyncio_N`, grown on demand up to EXECUTOR_MAX) is back;
    - journal connections (2 fds each, plus one for the shared -shm): the writer, and at most one reader
      per thread that reads (the main thread and each executor thread);
    - the InfluxDB sink's own pool (`influxdb1-<id>…`, up to SINK_POOL_MAX threads, also grown on demand);
    - TCP: at most one connection each to the broker and from our /metrics scraper, and to InfluxDB one per
      sink thread (two batches on the wire plus alarm events, each on its keep-alive connection); unix
      sockets, paho's socket pair, pipes, epoll and other files at most as many as after warm-up."""
    out = []
    for p in report["processes"]:
        w, e, pid = p["levels"]["after_warmup"], p["levels"]["end"], p["pid"]
        pool_w, pool_e = _pooled(w["python_threads"]), _pooled(e["python_threads"])
        for name, n in e["python_threads"].items():
            if name.startswith("influxdb") and n > SINK_POOL_MAX:
                out.append(f"pid {pid}: {n} threads in the sink pool {name}, more than {SINK_POOL_MAX}")
        if e["threads"] - pool_e > w["threads"] - pool_w:  # fewer is fine: a short-lived thread ended
            out.append(f"pid {pid}: threads other than the executor's: {w['threads'] - pool_w} after warm-up, "
                       f"{e['threads'] - pool_e} at the end ({w['python_threads']} -> {e['python_threads']})")
        if e["python_threads"].get("asyncio", 0) > EXECUTOR_MAX:
            out.append(f"pid {pid}: {pool_e} executor threads, more than {EXECUTOR_MAX}")
        if (e.get("journal", 0) - 1) / 2 > e["python_threads"].get("asyncio", 0) + 2:
            out.append(f"pid {pid}: {e.get('journal')} journal fds for {pool_e} executor threads")
        for kind, most in (("mqtt", 1), ("influx", SINK_POOL_MAX), ("api", 1)):
            if e.get(kind, 0) > most:
                out.append(f"pid {pid}: {e[kind]} {kind} connections at the end")
        for kind in ("unix", "tcp other", "listen", "pipe", "anon", "file"):
            if e.get(kind, 0) > w.get(kind, 0):
                out.append(f"pid {pid}: {kind} fds {w.get(kind, 0)} after warm-up, {e[kind]} at the end")
    return out


def run(tmp: Path, plan: Plan, log: Any = None) -> dict[str, Any]:
    return Soak(tmp, plan, log).run()


def summary(r: dict[str, Any]) -> str:
    rd, ix, al, sms, mem = r["readings"], r["influx"], r["alarms"], r["sms"], r["memory"]
    lines = [
        f"soak: {r['duration_s'] / 60:.1f} min, {r['plan']['sensors']} sensors, {len(r['faults'])} faults "
        f"({', '.join(f'{k} x{n}' for k, n in Counter(f['kind'] for f in r['faults']).items())})",
        f"readings: {rd['published']} published, {rd['journal_rows']} journal rows, lost {rd['lost']}, "
        f"duplicated {rd['duplicated']} (of which in doubt at the publisher {rd['duplicated_in_doubt_at_publisher']})",
        f"InfluxDB: {ix['points']} points, missing {ix['missing']}, extra {ix['extra']}: "
        f"{'exactly once' if ix['exactly_once'] else 'NOT exactly once'}",
        f"alarms: {al['fired_and_matched']}/{al['expected']} expected fired, {al['resolved']} resolved; "
        f"missing {len(al['missing'])}, unresolved {len(al['unresolved'])}, unexpected {len(al['unexpected'])}",
        f"SMS: {sms['recorded']} recorded for {sms['alarms_fired']} alarms; twice {len(sms['sent_twice'])}, "
        f"missing {len(sms['missing'])}; outbox {sms['outbox_states']}",
        f"RSS MB: start {mem['rss_start_mb']}, after warm-up {mem['rss_after_warmup_mb']}, end {mem['rss_end_mb']}, "
        f"max {mem['rss_max_mb']}; slope over the second half {mem['slope_mb_per_hour_second_half']} MB/h",
        f"fds {r['fds']['after_warmup']} -> {r['fds']['end']} (max {r['fds']['max']}); threads "
        f"{r['threads']['after_warmup']} -> {r['threads']['end']} (max {r['threads']['max']}); not back to "
        f"their level: {not_back(r) or 'none'}",
        f"CPU {r['cpu']['ms_per_reading']} ms/reading ({r['cpu']['percent_of_one_core']} % of a core); journal "
        f"{r['disk']['bytes_per_reading']} B/reading (file from empty; "
        f"{r['disk']['growth_bytes_per_reading_second_half']} over the second half), block writes "
        f"{r['disk']['block_writes_bytes_per_reading']} B/reading, WAL max {r['disk']['wal_max_bytes']} B",
        f"metrics: {r['metrics']}",
        f"daemon log: {r['log']['errors']} error lines; load average {r['load_average']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=45.0)
    ap.add_argument("--sensors", type=int, default=200)
    ap.add_argument("--zones", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="folder for journal, logs, samples, report "
                    "(default: a new temp folder, kept)")
    ap.add_argument("--short", action="store_true", help="the CI plan (under a minute of load)")
    a = ap.parse_args(argv)
    plan = short_plan() if a.short else Plan(minutes=a.minutes, sensors=a.sensors, zones=a.zones)
    import tempfile

    out = a.out or Path(tempfile.mkdtemp(prefix="coldchain-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"soak: {plan.minutes:g} min, {plan.sensors} sensors; files in {out}", flush=True)
    r = run(out, plan, sys.stdout)
    print(summary(r), flush=True)
    ok = (r["readings"]["lost"] == 0 and r["readings"]["duplicated"] == 0 and r["influx"]["exactly_once"]
          and not r["alarms"]["missing"] and not r["alarms"]["unresolved"] and not r["alarms"]["unexpected"]
          and not r["sms"]["sent_twice"] and not r["sms"]["missing"] and not not_back(r))
    print("soak: " + ("every count exact" if ok else "COUNTS DIFFER: see report.json"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
