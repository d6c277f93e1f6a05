"""Scenario 7: the same MQTT workload through the tools users pick instead, side by side:
Node-RED 4 + node-red-contrib-influxdb, mqtt2influxdb 1.5.2, and ours; same broker, same
InfluxDB 1.6.7 (one database each). Counted: readings that arrived in InfluxDB as points.

- steady: `STEADY_SENSORS` sensors, one reading every 2 s each (paho publisher, QoS 1);
- burst: `BURST_TOPICS` parallel `mosquitto_pub -l -q 1` processes, the C client sending its
  lines as fast as it can.

Every payload carries its own millisecond timestamp, unique per sensor: ours stores it
(`trust_device_time`), the Node-RED flow passes it as the point's `time` (precision ms).
mqtt2influxdb cannot take a time from the payload: it stamps each point with its receive time
to the second, so points of one sensor within one second overwrite each other in InfluxDB.

Where the peers are: `NODE_RED_DIR` (npm prefix with node-red@4 and node-red-contrib-influxdb)
and `MQTT2INFLUXDB` (the `mqtt2influxdb` script of a venv with mqtt2influxdb==1.5.2); the
Makefile's `bench-peers` target installs both under .bench/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import PY, BenchBroker, InfluxD, Result, wait_until

ROOT = Path(__file__).resolve().parent.parent
NODE_RED_DIR = Path(os.environ.get("NODE_RED_DIR", ROOT / ".bench" / "node-red"))
MQTT2INFLUXDB = Path(os.environ.get("MQTT2INFLUXDB", ROOT / ".bench" / "m2i" / "bin" / "mqtt2influxdb"))
STEADY_SENSORS = 20
BURST_TOPICS = 10


def _node_red_flow(port: int, influx_port: int, db: str, topic: str) -> list[dict[str, object]]:
    func = ("const p = JSON.parse(msg.payload);\n"
            "msg.payload = [{temperature: p.temperature, time: p.ts}, {sensor: msg.topic.split('/')[2]}];\n"
            "return msg;")
    return [
        {"id": "tab", "type": "tab", "label": "bench"},
        {"id": "broker", "type": "mqtt-broker", "broker": "127.0.0.1", "port": str(port), "clientid": "",
         "usetls": False, "protocolVersion": "4", "keepalive": "60", "cleansession": True, "autoConnect": True},
        {"id": "in", "type": "mqtt in", "z": "tab", "topic": topic, "qos": "1", "datatype": "utf8",
         "broker": "broker", "nl": False, "rap": False, "inputs": 0, "wires": [["fn"]]},
        {"id": "fn", "type": "function", "z": "tab", "func": func, "outputs": 1, "wires": [["out"]]},
        {"id": "influx", "type": "influxdb", "hostname": "127.0.0.1", "port": str(influx_port), "protocol": "http",
         "database": db, "name": "", "usetls": False, "influxdbVersion": "1.x"},
        {"id": "out", "type": "influxdb out", "z": "tab", "influxdb": "influx", "measurement": "readings",
         "precision": "ms", "retentionPolicy": "", "database": db, "wires": []},
    ]


@contextlib.contextmanager
def _proc(args: list[str], log: Path, ready: str | None, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    try:
        if ready:
            wait_until(lambda: ready in log.read_text(errors="replace") or p.poll() is not None, 60,
                       f"{args[0]} to print {ready!r}")
            if p.poll() is not None:
                raise RuntimeError(f"{args[0]} exited: {log.read_text(errors='replace')[-2000:]}")
        yield p
    finally:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(15)


def node_red(tmp: Path, port: int, influx: InfluxD, db: str, topic: str) -> contextlib.AbstractContextManager[object]:
    user = tmp / "node-red"
    user.mkdir(parents=True, exist_ok=True)
    (user / "flows.json").write_text(json.dumps(_node_red_flow(port, influx.port, db, topic)), encoding="utf-8")
    (user / "settings.js").write_text(
        "module.exports = {flowFile: 'flows.json', uiHost: '127.0.0.1', credentialSecret: false,\n"
        "  logging: {console: {level: 'info', metrics: false, audit: false}}};\n", encoding="utf-8")
    binary = NODE_RED_DIR / "node_modules" / ".bin" / "node-red"
    from tests.conftest import free_port

    return _proc([str(binary), "--userDir", str(user), "--port", str(free_port()), "--no-telemetry"],
                 tmp / "node-red.log", "Connected to broker", cwd=user)


def mqtt2influxdb(tmp: Path, port: int, influx: InfluxD, db: str,
                  topic: str) -> contextlib.AbstractContextManager[object]:
    cfg = {"mqtt": {"host": "127.0.0.1", "port": port},
           "influxdb": {"host": "127.0.0.1", "port": influx.port, "database": db},
           "points": [{"measurement": "readings", "topic": topic,
                       "fields": {"temperature": "$.payload.temperature"}, "tags": {"sensor": "$.topic[2]"}}]}
    path = tmp / "m2i.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return _proc([str(MQTT2INFLUXDB), "-c", str(path)], tmp / "m2i.log", "subscribe")


def ours(tmp: Path, port: int, influx: InfluxD, db: str,
         sensors: list[str]) -> contextlib.AbstractContextManager[object]:
    doc = {
        "site": {"id": "bench", "name": "基准冷库"},
        "storage": {"journal": str(tmp / "ours.db")},
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": f"bench-ours-{os.getpid()}", "qos": 1},
        "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin", "alarms": {"no_data": False}}],
        "sensors": [{"id": s, "zone": "z1", "type": "mqtt", "format": "json", "topic": f"bench/peers/{s}",
                     "values": {"temperature": "temperature"}, "timestamp": {"path": "ts", "format": "epoch_ms"},
                     "trust_device_time": True, "availability": False} for s in sensors],
        "sinks": [{"id": "influx", "type": "influxdb1", "url": influx.url, "database": db}],
        "notifiers": [{"id": "out", "type": "console", "stream": "log"}],
        "api": {"enabled": False},
    }
    path = tmp / "ours.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return _proc([PY, "-m", "tests.daemon.accelerated_daemon", str(path), "1"], tmp / "ours.log", "ready", cwd=ROOT)


def count(influx: InfluxD, db: str) -> int:
    series = influx.query('SELECT COUNT("temperature") FROM "readings"', db)
    return sum(int(s["values"][0][1]) for s in series)


def settle(influx: InfluxD, dbs: list[str], expected: int, limit: float = 90.0) -> dict[str, int]:
    """Counts once every database has all points or has not grown for 5 s (at most `limit` s)."""
    last: dict[str, int] = {}
    still = 0.0
    end = time.monotonic() + limit
    while time.monotonic() < end:
        now = {db: count(influx, db) for db in dbs}
        if all(v >= expected for v in now.values()):
            return now
        still = still + 1 if now == last else 0
        if still >= 5:
            return now
        last = now
        time.sleep(1)
    return last


def steady(port: int, n_sensors: int, seconds: float, period: float = 2.0) -> int:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-steady-{os.getpid()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    sent, t0 = 0, time.monotonic()
    gap = period / n_sensors
    while time.monotonic() - t0 < seconds:
        k = sent % n_sensors
        c.publish(f"bench/peers/st{k}", json.dumps({"temperature": 6.0 + (sent % 7) / 10,
                                                    "ts": int(time.time() * 1000)}), qos=1).wait_for_publish(10)
        sent += 1
        time.sleep(max(0.0, t0 + sent * gap - time.monotonic()))
    c.disconnect()
    c.loop_stop()
    return sent


def burst(port: int, topics: int, per_topic: int) -> tuple[int, float]:
    base = int(time.time() * 1000) - 10 * per_topic
    procs = []
    t0 = time.perf_counter()
    for k in range(topics):
        lines = "".join(json.dumps({"temperature": 6.0 + (i % 7) / 10, "ts": base + i}) + "\n"
                        for i in range(per_topic))
        p = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l",
                              "-t", f"bench/peers/bu{k}", "-i", f"bench-burst-{k}"], stdin=subprocess.PIPE)
        procs.append((p, lines.encode()))
    threads = [threading.Thread(target=p.communicate, args=(data,)) for p, data in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return topics * per_topic, time.perf_counter() - t0


def available() -> str | None:
    if not (NODE_RED_DIR / "node_modules" / ".bin" / "node-red").exists():
        return f"Node-RED not found under {NODE_RED_DIR} (make bench-peers)"
    if not MQTT2INFLUXDB.exists():
        return f"mqtt2influxdb not found at {MQTT2INFLUXDB} (make bench-peers)"
    if shutil.which("mosquitto_pub") is None:
        return "mosquitto_pub not installed"
    return None


def run(tmp: Path, influx: InfluxD, steady_s: float = 20.0, per_topic: int = 3000,
        broker_extra: str = "") -> list[Result]:
    missing = available()
    if missing:
        return [Result(key="peers", title="7. peers: Node-RED 4, mqtt2influxdb vs ours", value=float("nan"),
                       unit="", target="lose none", met=None, notes=[f"skipped: {missing}"])]
    tmp.mkdir(parents=True, exist_ok=True)
    stamp = time.monotonic_ns()
    dbs = {"node-red": f"nr_{stamp}", "mqtt2influxdb": f"m2i_{stamp}", "ours": f"ours_{stamp}"}
    for db in dbs.values():
        influx.create_database(db)
    broker = BenchBroker(tmp / "mosq", extra=broker_extra)  # "": the stock Debian mosquitto settings
    broker.start()
    sensors = [f"st{k}" for k in range(STEADY_SENSORS)] + [f"bu{k}" for k in range(BURST_TOPICS)]
    raw: dict[str, dict[str, int | float]] = {}
    try:
        with node_red(tmp, broker.port, influx, dbs["node-red"], "bench/peers/+"), \
                mqtt2influxdb(tmp, broker.port, influx, dbs["mqtt2influxdb"], "bench/peers/+"), \
                ours(tmp, broker.port, influx, dbs["ours"], sensors):
            time.sleep(2)  # every subscriber connected and subscribed
            n_steady = steady(broker.port, STEADY_SENSORS, steady_s)
            got_steady = settle(influx, list(dbs.values()), n_steady)
            n_burst, burst_s = burst(broker.port, BURST_TOPICS, per_topic)
            got_all = settle(influx, list(dbs.values()), n_steady + n_burst)
    finally:
        broker.stop()
    for name, db in dbs.items():
        s, b = got_steady.get(db, 0), got_all.get(db, 0) - got_steady.get(db, 0)
        raw[name] = {"steady_sent": n_steady, "steady_arrived": s, "steady_lost": n_steady - s,
                     "burst_sent": n_burst, "burst_arrived": b, "burst_lost": n_burst - b}
        influx.query(f'DROP DATABASE "{db}"')
    lost = raw["ours"]["steady_lost"] + raw["ours"]["burst_lost"]
    return [Result(
        key="peers", title="7. steady + burst through Node-RED 4, mqtt2influxdb 1.5.2 and ours: readings lost",
        value=float(lost), unit="lost (ours)", target="<= 0", met=lost == 0,
        raw={**raw, "broker_extra_config": broker_extra.strip() or "(stock)", "burst_publish_s": round(burst_s, 2),
             "burst_msgs_per_s": round(n_burst / burst_s)},
    )]


if __name__ == "__main__":  # a quick look: python -m bench.peers_compare
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    server = InfluxD(tmp / "influx")
    server.start()
    try:
        for r in run(tmp, server, steady_s=float(sys.argv[1]) if len(sys.argv) > 1 else 10,
                     per_topic=int(sys.argv[2]) if len(sys.argv) > 2 else 1000):
            print(r.title, r.value, json.dumps(r.raw, indent=1))
    finally:
        server.stop()
