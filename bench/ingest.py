"""Scenario 1: sustained MQTT -> journal ingest of the real Daemon vs a bare paho-mqtt loop.

Both consumers drain the same number of QoS 1 messages that the broker queued for their
persistent session while they were away, so the figure is the consumer's pace, not the
publisher's: the daemon acknowledges each message only after its journal commit
(synchronous=FULL), the bare loop acknowledges on receipt and stores nothing.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import statistics
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import BROKER_TUNING, BenchBroker, Result, app_config, check
from daemon.app.runtime import Daemon

TOPIC = "bench/ingest/{}"


def queued_session(port: int, client_id: str, topics: list[str]) -> None:
    """Create a persistent session with QoS 1 subscriptions, then leave so the broker queues."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe([(t, 1) for t in topics])
    if not done.wait(10):
        raise RuntimeError("subscribe not acknowledged")
    c.disconnect()
    c.loop_stop()


def preload(port: int, topics: list[str], n: int, payload: bytes | None = None) -> None:
    """Publish n QoS 1 messages round-robin over topics, waiting until the broker has them all."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.monotonic_ns()}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = []
    for i in range(n):
        body = payload or f'{{"temperature": {5.5 + (i % 20) / 10}}}'.encode()  # inside mandarin's 5-8 °C
        infos.append(c.publish(topics[i % len(topics)], body, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def bare_paho(port: int, client_id: str, n: int) -> float:
    """Seconds a plain paho subscriber loop needs to receive n queued messages (auto-ack)."""
    got = 0
    done = threading.Event()

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_message = on_message
    t0 = time.perf_counter()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"bare paho got {got} of {n}")
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed


def daemon_config(tmp: Path, port: int, sensors: int, client_id: str, **storage: object) -> dict[str, object]:
    return {
        "site": {"id": "bench", "name": "基准冷库"},
        "storage": {"journal": str(tmp / "journal.db"), **storage},
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": client_id, "qos": 1},
        "zones": [{"id": "z1", "name": "1号库", "commodity": "mandarin", "alarms": {"no_data": False}}],
        "sensors": [{"id": f"s{i}", "zone": "z1", "type": "mqtt", "format": "json", "topic": TOPIC.format(i),
                     "values": {"temperature": "temperature"}, "availability": False} for i in range(sensors)],
        "notifiers": [{"id": "out", "type": "console", "stream": "log"}],
        "api": {"enabled": False},
    }


def _cpu() -> float:
    """CPU seconds of this process (all its threads; the broker and the publisher are other processes)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _run_daemon(cfg_doc: dict[str, object], tmp: Path, n: int) -> tuple[float, int]:
    d = Daemon(app_config(tmp, cfg_doc))
    t0 = time.perf_counter()
    await d.start()
    deadline = t0 + 300
    while d.stats.get("readings_stored") < n and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    await d.stop()
    return elapsed, d.stats.get("readings_stored")


def daemon_ingest(tmp: Path, port: int, sensors: int, n: int, **storage: object) -> tuple[float, int, float]:
    """Seconds, messages stored and CPU seconds of the daemon draining n queued messages."""
    client_id = f"bench-daemon-{time.monotonic_ns()}"
    topics = [TOPIC.format(i) for i in range(sensors)]
    queued_session(port, client_id, topics)
    preload(port, topics, n)
    cfg = daemon_config(tmp, port, sensors, client_id, **storage)
    c0 = _cpu()
    t, stored = asyncio.run(_run_daemon(cfg, tmp, n))
    return t, stored, _cpu() - c0


def baseline_ingest(port: int, sensors: int, n: int) -> tuple[float, float]:
    """Seconds and CPU seconds of the bare loop receiving n queued messages."""
    client_id = f"bench-bare-{time.monotonic_ns()}"
    topics = [TOPIC.format(i) for i in range(sensors)]
    queued_session(port, client_id, topics)
    preload(port, topics, n)
    c0 = _cpu()
    t = bare_paho(port, client_id, n)
    return t, _cpu() - c0


def run(tmp: Path, n: int = 50_000, sensors: int = 100, repeat: int = 2) -> list[Result]:
    logging.getLogger("coldchain").setLevel(logging.WARNING)
    out: list[Result] = []
    # Both brokers get a deep queue (the preload must fit); they differ in the QoS 1 window.
    for label, extra in (("tuned broker, in-flight 1000", None),
                         ("broker in-flight 20, Debian default", "max_queued_messages 1000000\n")):
        tag = "tuned" if extra is None else "stock"
        broker = BenchBroker(tmp / f"mosq-{tag}", **({"extra": extra} if extra else {}))
        broker.start()
        bases, ours, cpu_bare, cpu_ours, ratios, stored = [], [], [], [], [], 0
        try:
            for rep in range(repeat):  # interleaved: the box is shared, one slow second skews one run
                t_bare, c_bare = baseline_ingest(broker.port, sensors, n)
                t, stored, c = daemon_ingest(tmp / f"ingest-{tag}-{rep}", broker.port, sensors, n)
                bases.append(t_bare)
                ours.append(t)
                cpu_bare.append(1e6 * c_bare / n)
                cpu_ours.append(1e6 * c / max(stored, 1))
                ratios.append((stored / t) / (n / t_bare))
        finally:
            broker.stop()
        out.append(_result(tag, label, extra, n, sensors, stored, bases, ours,
                           {"ratio_per_round": [round(x, 3) for x in ratios],
                            "ratio_median": round(statistics.median(ratios), 3),
                            "bare_cpu_us_per_msg": [round(x) for x in cpu_bare],
                            "ours_cpu_us_per_msg": [round(x) for x in cpu_ours]}))
    return out


def _result(tag: str, label: str, extra: str | None, n: int, sensors: int, stored: int, bases: list[float],
            ours: list[float], rounds: dict[str, object]) -> Result:
    """The headline is best of each side (as since session 1); the per-round ratios and CPU per message beside it."""
    base_s, ours_s = min(bases), min(ours)
    base_rate, ours_rate = n / base_s, stored / ours_s
    ratio = ours_rate / base_rate
    return Result(
        key=f"ingest@{tag}", title=f"1. MQTT -> journal ingest vs bare paho, QoS 1 ({label})",
        value=ratio, unit="x", target=">= 0.8", met=check(ratio, ">= 0.8") if tag == "tuned" else None,
        raw={"messages": n, "sensors": sensors, "stored": stored, "ours_msg_per_s": round(ours_rate),
             "bare_paho_msg_per_s": round(base_rate), "ours_s": round(ours_s, 3), "bare_s": round(base_s, 3),
             "runs": len(ours),
             "ours_runs_s": [round(x, 2) for x in ours], "bare_runs_s": [round(x, 2) for x in bases],
             **rounds,
             "broker_extra_config": (extra or BROKER_TUNING).strip().replace("\n", "; ")},
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.ingest`: scenario 1 alone, rounds alternating the bare loop and ours; raw figures as JSON."""
    import argparse
    import json
    import os
    import shutil
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    ap.add_argument("--messages", type=int, default=20_000, help="QoS 1 messages per round (make bench: 20,000)")
    ap.add_argument("--sensors", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=4, help="rounds per broker, each bare then ours")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="coldchain-bench-ingest-"))
    start, load0 = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), os.getloadavg()
    try:
        results = run(tmp, n=args.messages, sensors=args.sensors, repeat=args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"start": start, "end": time.strftime("%H:%M:%S UTC", time.gmtime()),
                      "load_start": [round(x, 2) for x in load0], "load_end": [round(x, 2) for x in os.getloadavg()],
                      "results": {r.key: {"value": round(r.value, 3), **r.raw} for r in results}},
                     ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
