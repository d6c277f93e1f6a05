"""The regional hub at scale: a simulated day of `centers` x `rooms` into PostgreSQL (fsync on), as ratios.

- events/s of one worker's write path (contract parse + idempotent upserts, one transaction per batch of
  `--batch-size` messages, a savepoint each; and, unless `--no-per-message`, one transaction per message as the
  worker did before batches) vs the bare minimum of the same work: one plain INSERT per message, one commit
  each, on the same server;
- PostgreSQL rows and bytes per simulated day, extrapolated linearly to 1,000 x 20 (measured per event here);
- a code's chain and the region's open alarms, queried on the loaded day, vs a primary-key lookup of one event;
- the same day through Mosquitto into 1 and then 2 worker processes (shared subscription, PUBACK after commit):
  messages/s per worker, and what the second worker adds.

A room's day: two lots commissioned, stored and shipped to the next center, where they are received (4 events
per lot); one alarm opened, acknowledged and resolved. `python -m bench.hub [--quick] [--centers N]`;
`--uplink-readings` adds the boxes' readings through the broker (the workers' lag), alternating with a run without
them; `--broker-only` runs only the broker part.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import Result, check
from bench.hub_tsdb import Readings
from bench.hub_uplink import UplinkReadings, check_lag
from hub import queries, store
from hub.contract import parse
from hub.worker import Settings, Worker
from tests.hub.boxes import T0, alarm, event, raw, site_msg
from tests.hub.postgres import Postgres
from tests.peers import Mosquitto, wait_until

H = 3_600_000


def day(centers: int, rooms: int, drops: int = 0) -> Iterator[tuple[str, bytes]]:
    """The messages of one simulated day, in the order the boxes would send them; with `drops`, each box's link
    drops that many times in its day (its Last Will `offline`, then `online` again, among its events: rural 4G)."""
    for c in range(centers):
        yield f"coldchain/c{c}/site", raw(site_msg(f"c{c}", T0, [(f"z{r}", 100.0) for r in range(rooms)]))
    n = 0
    for c in range(centers):
        site, nxt = f"c{c}", f"c{(c + 1) % centers}"
        for r in range(rooms):
            if drops and r % max(1, rooms // drops) == rooms // (2 * drops):
                for state, ms in (("offline", T0 + r * H // 2), ("online", T0 + r * H // 2 + 60_000)):
                    yield f"coldchain/{site}/status", raw({"state": state, "ts": ms})
            for k in range(2):
                lot, zone, t = f"L-{c}-{r}-{k}", f"z{r}", T0 + k * H
                steps: list[tuple[str, int, dict[str, Any]]] = [
                    ("commissioning", 0, {}), ("storing", 1, {}), ("shipping", 8, {"cc:destination": nxt})]
                for step, at, extra in steps:
                    n += 1
                    topic = f"coldchain/{site}/events/epcis"
                    yield topic, raw(event(site, n, step, lot, t + at * H, zone if step != "shipping" else None,
                                           **extra))
                n += 1
                source: dict[str, Any] = {"cc:source": site}
                yield f"coldchain/{nxt}/events/epcis", raw(event(nxt, n, "receiving", lot, t + 12 * H, zone, **source))
            for state, at, by in (("open", 3, None), ("acknowledged", 4, "zhang"), ("resolved", 5, None)):
                yield f"coldchain/{site}/events/alarms", raw(alarm(site, r, state, T0 + at * H, by=by))


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of `fn` over `repeat` runs."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def load(dsn: str, msgs: list[tuple[str, bytes]]) -> float:
    """Seconds for one connection to parse and store every message, one transaction each (a worker's path)."""
    with psycopg.connect(dsn) as conn:
        t = time.perf_counter()
        for topic, body in msgs:
            record = parse(topic, body)
            assert record is not None
            store.apply(conn, record)
        return time.perf_counter() - t


def load_batched(dsn: str, msgs: list[tuple[str, bytes]], batch: int) -> float:
    """Seconds for one worker's batched path (hub.worker.Worker.write) over every message, `batch` at a time."""
    worker = Worker(Settings(dsn=dsn, batch_size=batch))
    t = time.perf_counter()
    for i in range(0, len(msgs), batch):
        worker.write(msgs[i:i + batch])
    elapsed = time.perf_counter() - t
    assert worker.counts.refused == 0 and worker.counts.stored == len(msgs), worker.counts
    return elapsed


def bare(dsn: str, msgs: list[tuple[str, bytes]]) -> float:
    """Seconds for the same number of single-row INSERT + COMMIT, JSON body included: the floor of any design."""
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE bare (id bigserial PRIMARY KEY, topic text, body jsonb)")
        conn.commit()
        t = time.perf_counter()
        for topic, body in msgs:
            conn.execute("INSERT INTO bare (topic, body) VALUES (%s, %s)", (topic, body.decode()))
            conn.commit()
        return time.perf_counter() - t


def through_broker(pg: Postgres, msgs: list[tuple[str, bytes]], workers: int, batch: int,
                   cpu: dict[str, Any], db: str = "", uplink: tuple[int, int, float] | None = None
                   ) -> tuple[float, float]:
    """Seconds from the first publish until `workers` worker processes have committed every event and alarm, and
    until the broker had acknowledged every publish (if the two are close, the publisher is the bound); `cpu`
    gets each worker's and the broker's CPU seconds (close to the elapsed time: that process is the bound), the
    batches each worker redid and PostgreSQL's deadlock count. Into a fresh database `db` (default w<workers>).
    With `uplink` (centers, rooms, speed) the boxes' readings also flow through the broker to the workers
    (bench/hub_uplink.py) until the day is committed; `cpu["uplink"]` then says whether every center's lag is right."""
    db = db or f"w{workers}"
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
    dsn = pg.dsn(db)
    root = Path(tempfile.mkdtemp(prefix="cc-hub-bench-"))
    broker = start_broker(root)
    procs = [subprocess.Popen([sys.executable, "-m", "hub", "--dsn", dsn, "worker", "--broker",
                               f"127.0.0.1:{broker.port}", "--client-id", f"w{i}",
                               *([] if uplink else ["--no-readings"]), "--batch-size", str(batch)],
                              stdout=(root / f"w{i}.log").open("wb"), stderr=subprocess.STDOUT) for i in range(workers)]
    try:
        for i in range(workers):
            wait_until(lambda i=i: "subscribed" in (root / f"w{i}.log").read_text(), 60, f"worker {i}")  # type: ignore[misc]
        want = (sum("/events/epcis" in t for t, _ in msgs), sum("/events/alarms" in t for t, _ in msgs))
        feed = UplinkReadings(broker.port, *uplink) if uplink else None
        if feed is not None:
            feed.start()
        box = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-boxes", protocol=mqtt.MQTTv5)
        box.max_inflight_messages_set(100)
        box.connect("127.0.0.1", broker.port)
        box.loop_start()
        t = time.perf_counter()
        for i in range(0, len(msgs), 30_000):  # paho holds at most 65,535 unacknowledged (packet ids)
            infos = [box.publish(topic, body, qos=1) for topic, body in msgs[i:i + 30_000]]
            for info in infos:
                info.wait_for_publish(120)
        published = time.perf_counter() - t
        with psycopg.connect(dsn) as conn:
            def done() -> bool:
                row = conn.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM alarm_changes)")
                got = row.fetchone()
                conn.rollback()
                return got == want
            wait_until(done, 900, "every event and alarm committed", every=0.2)
        elapsed = time.perf_counter() - t
        if feed is not None:
            cpu["uplink"] = uplink_figures(feed, dsn)
        cpu.update({f"w{i}": round(cpu_s(p.pid), 1) for i, p in enumerate(procs)})
        if broker.proc is not None:
            cpu["mosquitto"] = round(cpu_s(broker.proc.pid), 1)
        box.disconnect()
        box.loop_stop()
        return elapsed, published
    finally:
        for p in procs:
            p.terminate()
            p.wait(15)
        broker.stop()
        cpu.update(redone(root, workers, pg.dsn(), db))
        time.sleep(1)  # the workers' backends report their counts as they exit
        cpu["centers_writes"] = centers_writes(dsn)


def start_broker(root: Path) -> Mosquitto:
    """Mosquitto with no queue limit: the day is published at once."""
    broker = Mosquitto(root)
    broker.config.write_text(f"listener {broker.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             "max_queued_messages 0\n", encoding="utf-8")
    broker.start()
    return broker


def uplink_figures(feed: UplinkReadings, dsn: str) -> dict[str, Any]:
    """Stop the readings, wait for the workers' lag write (every 2 s) to reach every center, and check it. Not
    before every center has sent a box-minute: a day committed within the feed's first box-minutes (a fast
    run) left centers without a reading (CI saw 1 of 3)."""
    wait_until(lambda: len(feed.newest) >= feed.centers, 60, "a box-minute from every center")
    seconds = feed.stop()
    with psycopg.connect(dsn) as conn:
        def right() -> dict[str, Any] | None:
            got = check_lag(conn, feed.newest)
            return None if got["wrong"] else got
        try:
            lag = wait_until(right, 60, "every center's lag written")
        except AssertionError:
            lag = check_lag(conn, feed.newest)
            lag["wrong"] = len(lag["wrong"])
    return {"readings": feed.sent, "seconds": round(seconds, 1), "per_s": round(feed.sent / seconds, 1), **lag}


def centers_writes(dsn: str) -> int:
    """Rows PostgreSQL wrote into `centers` so far (inserts + updates: the lag writes and the status messages)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'centers'"
                           ).fetchone()
        return int(row[0]) if row else -1


def redone(root: Path, workers: int, admin_dsn: str, db: str) -> dict[str, float]:
    """Batches each worker redid whole after a deadlock or serialization failure (its log's warnings, which the
    worker of main's code wrote too), and the deadlocks PostgreSQL itself counted in the run's database."""
    out: dict[str, float] = {}
    for i in range(workers):
        log = (root / f"w{i}.log").read_text(errors="replace")
        out[f"w{i}_redone"] = float(len(re.findall(r"batch of \d+ redone", log)))
    with psycopg.connect(admin_dsn) as conn:
        row = conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (db,)).fetchone()
        out["deadlocks"] = float(row[0]) if row else -1.0
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sizes(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        out = {}
        for table in ("events", "event_lots", "lot_places", "alarm_changes", "alarms", "centers", "rooms"):
            query = f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"  # noqa: S608 - our names
            row = conn.execute(query).fetchone()
            assert row is not None
            out[f"{table}_rows"], out[f"{table}_bytes"] = int(row[0]), int(row[1])
        return out


def run(centers: int = 100, rooms: int = 20, repeat: int = 20, batch: int = 500, per_message: bool = True,
        readings: bool = True, speed: float = 1.0, drops: int = 2, uplink: bool = False,
        broker_only: bool = False) -> list[Result]:
    """The whole bench; with `readings`, the broker runs also have the region's readings going into InfluxDB
    (bench/hub_tsdb.py) at `speed` x real time, after one run of 1 worker without them (the baseline); with
    `uplink`, 1 and 2 workers alternate between a run without readings through the broker and one with them
    (bench/hub_uplink.py). `broker_only` skips the in-process paths and the queries."""
    pg = Postgres()
    pg.start(fsync=True)
    try:
        msgs = list(day(centers, rooms, drops))
        tsdb = Readings(centers, rooms, speed) if readings else None
        if broker_only:
            runs, sent = broker_runs(pg, msgs, batch, tsdb, (centers, rooms, speed) if uplink else None)
            return broker_results(len(msgs), runs, batch, sent, (centers, rooms, speed))
        with psycopg.connect(pg.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE hub")
            admin.execute("CREATE DATABASE floor")
        dsn = pg.dsn("hub")
        with psycopg.connect(dsn) as conn:
            store.create(conn)
        single = None
        if per_message:
            with psycopg.connect(pg.dsn(), autocommit=True) as admin:
                admin.execute("CREATE DATABASE single")
            with psycopg.connect(pg.dsn("single")) as conn:
                store.create(conn)
            single = load(pg.dsn("single"), msgs)
        ours, floor = load_batched(dsn, msgs, batch), bare(pg.dsn("floor"), msgs)
        runs, sent = broker_runs(pg, msgs, batch, tsdb, (centers, rooms, speed) if uplink else None)
        timing = {"ours": ours, "floor": floor, "single": single}
        return [*results(dsn, centers, rooms, len(msgs), timing, repeat, batch),
                *broker_results(len(msgs), runs, batch, sent, (centers, rooms, speed))]
    finally:
        pg.stop()


Run = tuple[float, float, dict[str, Any]]  # seconds to commit all, seconds to publish all, CPU and redo counts


def broker_runs(pg: Postgres, msgs: list[tuple[str, bytes]], batch: int, readings: Readings | None,
                uplink: tuple[int, int, float] | None = None) -> tuple[dict[str, Run], dict[str, Any] | None]:
    """1 and 2 workers through Mosquitto; with `readings`, first 1 worker without them, then both with; with
    `uplink`, each of 1 and 2 workers first without readings through the broker, then with them (InfluxDB's
    readings, if any, flow through all four)."""

    def one(workers: int, db: str = "", up: tuple[int, int, float] | None = None) -> Run:
        cpu: dict[str, Any] = {}
        elapsed, published = through_broker(pg, msgs, workers, batch, cpu, db, up)
        return elapsed, published, cpu

    if uplink is not None:
        return uplink_runs(one, readings, uplink)
    if readings is None:
        return {"one_worker": one(1), "two_workers": one(2)}, None
    with readings:
        quiet = one(1, "quiet")
        readings.start()
        runs = {"one_worker_no_readings": quiet, "one_worker": one(1), "two_workers": one(2)}
        return runs, readings.stop()


def uplink_runs(one: Callable[[int, str, tuple[int, int, float] | None], Run], readings: Readings | None,
                uplink: tuple[int, int, float]) -> tuple[dict[str, Run], dict[str, Any] | None]:
    """Baseline and variant back to back for 1, then 2 workers: the ratio of each pair is what the readings cost."""
    order = [("one_worker_no_uplink", 1, None), ("one_worker", 1, uplink),
             ("two_workers_no_uplink", 2, None), ("two_workers", 2, uplink)]
    if readings is None:
        return {name: one(n, name, up) for name, n, up in order}, None
    with readings:
        readings.start()
        runs = {name: one(n, name, up) for name, n, up in order}
        return runs, readings.stop()


def results(dsn: str, centers: int, rooms: int, n: int, timing: dict[str, float | None], repeat: int,
            batch: int) -> list[Result]:
    ours, floor, single = timing["ours"], timing["floor"], timing["single"]
    assert ours is not None and floor is not None
    size = sizes(dsn)
    scale = (1000 * 20) / (centers * rooms)
    rows_day = sum(v for k, v in size.items() if k.endswith("_rows")) * scale
    bytes_day = sum(v for k, v in size.items() if k.endswith("_bytes")) * scale
    with psycopg.connect(dsn) as conn:
        code = f"L-{centers // 2}-{rooms // 2}-1"
        assert len(queries.chain(conn, code).events) == 4
        pk = timed(lambda: conn.execute("SELECT body FROM events WHERE event_id = "
                                        "(SELECT min(event_id) FROM events)").fetchone(), repeat)
        chain_s = timed(lambda: queries.chain(conn, code), repeat)
        capacity_s = timed(lambda: queries.capacity(conn), min(repeat, 5))
        in_store = sum(r["lots"] for r in queries.capacity(conn))
        conn.execute("UPDATE alarms SET state = 'open' WHERE id::int % 2 = 0")  # half the rooms with a live alarm
        live = timed(lambda: queries.open_alarms(conn), repeat)
        live_rows = len(queries.open_alarms(conn))
        conn.rollback()
    raw_: dict[str, Any] = {
        "centers": centers, "rooms": rooms, "messages": n, "batch": batch, "ours_s": round(ours, 2),
        "floor_s": round(floor, 2), "events_per_s": round(n / ours), "floor_per_s": round(n / floor),
        "per_message_per_s": None if single is None else round(n / single), **size}
    return [
        Result("hub_write", "hub worker: messages/s vs bare INSERT+COMMIT", (n / ours) / (n / floor), "x",
               ">= 0.3", check((n / ours) / (n / floor), ">= 0.3"), raw_,
               bound=f"one commit per batch of {batch}: CPU (parse, adapt, execute), no longer the commit"),
        Result("hub_rows", "hub: PostgreSQL rows per day at 1,000 x 20", rows_day, "rows", "", None,
               {"bytes_per_day": round(bytes_day), "extrapolated_from": f"{centers} x {rooms}"}),
        Result("hub_chain", "hub: a code's chain vs one event by key", chain_s / pk, "x", "<= 20",
               check(chain_s / pk, "<= 20"), {"chain_ms": round(chain_s * 1000, 2), "pk_ms": round(pk * 1000, 3)}),
        Result("hub_alarms", "hub: the region's open alarms vs one event by key", live / pk, "x", "", None,
               {"alarms_ms": round(live * 1000, 2), "open_alarms": live_rows}),
        Result("hub_capacity", "hub: capacity and occupancy of every room, ms", capacity_s * 1000, "ms", "", None,
               {"rooms": centers * rooms, "lots_in_store": in_store}),
    ]


def broker_results(n: int, runs: dict[str, Run], batch: int, tsdb: dict[str, Any] | None,
                   size: tuple[int, int, float]) -> list[Result]:
    raw_: dict[str, Any] = {"messages": n, "batch": batch}
    for name, (elapsed, published, cpu) in runs.items():
        raw_.update({f"{name}_s": round(elapsed, 2), f"{name}_published_s": round(published, 2),
                     f"{name}_per_s": round(n / elapsed), f"{name}_cpu_s": cpu})
    one, two = runs["one_worker"][0], runs["two_workers"][0]
    out = [Result("hub_broker", "hub: 2 workers vs 1 through Mosquitto (messages/s)", one / two, "x", ">= 1.2",
                  check(one / two, ">= 1.2"), raw_,
                  bound="2 cores shared by both workers, PostgreSQL, Mosquitto and the publisher (idle 1-5 % with "
                        "two workers in vmstat; no lock waits in pg_stat_activity)")]
    if "one_worker_no_uplink" in runs:
        lags = {name: run[2]["uplink"] for name, run in runs.items() if "uplink" in run[2]}
        wrong = sum(len(lag["wrong"]) if isinstance(lag["wrong"], list) else lag["wrong"] for lag in lags.values())
        out.append(Result("hub_uplink", "hub: centers whose lag disagrees with the readings sent through the broker",
                          wrong, "centers", "<= 0", check(wrong, "<= 0"), lags,
                          bound="one lag write per center every 2 s per worker (lag_flush_s)"))
    if tsdb is not None:
        centers, rooms, speed = size
        sent = tsdb["sent"]["points"]
        out.append(Result(
            "hub_tsdb", "hub: readings into InfluxDB during the broker runs, points counted / sent",
            tsdb["points_counted"] / sent if sent else 0.0, "x", ">= 1", check(
                tsdb["points_counted"] / sent if sent else 0.0, ">= 1"),
            {**tsdb, "rooms": centers * rooms, "speed": speed, "points_per_day": centers * rooms * 1440},
            bound="one POST per box and simulated minute, 20 readings each, gzip; InfluxDB 1.6.7 on the same 2 "
                  "cores"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.hub")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--centers", type=int, default=100)
    ap.add_argument("--rooms", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=500, help="the workers' --batch-size")
    ap.add_argument("--no-per-message", action="store_true",
                    help="skip the one-commit-per-message path (slow: ~300 messages/s here)")
    ap.add_argument("--no-readings", action="store_true", help="no InfluxDB, no readings during the broker runs")
    ap.add_argument("--readings-speed", type=float, default=1.0,
                    help="simulated minutes per real minute of the readings (1: 333 points/s at 1,000 x 20)")
    ap.add_argument("--drops", type=int, default=2, help="link drops per box and day (status offline, online)")
    ap.add_argument("--uplink-readings", action="store_true",
                    help="also the readings through the broker to the workers (their lag), alternating with none")
    ap.add_argument("--broker-only", action="store_true", help="only the runs through Mosquitto")
    args = ap.parse_args()
    for r in run(5 if args.quick else args.centers, 4 if args.quick else args.rooms, 5 if args.quick else 20,
                 args.batch_size, not args.no_per_message, not args.no_readings, args.readings_speed, args.drops,
                 args.uplink_readings, args.broker_only):
        print(f"{r.title}: {r.value:.3g} {r.unit} (target {r.target or 'n/a'}) {json.dumps(r.raw)}")


if __name__ == "__main__":
    main()
