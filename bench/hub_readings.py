"""The region's readings into InfluxDB 1.x while the hub bench runs: `centers` boxes x `rooms` rooms, one
temperature per room per simulated minute, each box's minute one POST through the daemon's own sink code
(drivers/sinks/influxdb, gzip on as on a box).

A process of its own (the boxes are other machines), run by bench/hub.py until SIGTERM; then it waits for the
POSTs on the wire and prints one JSON line: posts and points sent, how far behind the schedule it ended, POST
times, its own CPU seconds. `speed` 1 is real time: 1,000 x 20 rooms is 333 points/s in 16.7 POSTs/s.
`python -m bench.hub_readings --url http://127.0.0.1:8086 --db region --centers 1000 --rooms 20`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field

from daemon.ports.errors import SinkError
from daemon.ports.model import Quantity, Reading
from drivers.sinks.influxdb import InfluxDB1Config, InfluxDB1Sink, InfluxDB2Config, InfluxDB2Sink

T0_S = 1_763_568_000  # the hub bench's day (tests/hub/boxes.py T0), in seconds
SINKS = 4  # connection pools; each sink has 2 POSTs on the wire at most (InfluxDB1Sink.max_in_flight)


@dataclass
class Feed:
    url: str
    db: str
    centers: int
    rooms: int
    speed: float = 1.0
    target: str = "influxdb1"  # or "vm": VictoriaMetrics through the influxdb2 sink (/api/v2/write)
    posts: int = 0
    points: int = 0
    errors: int = 0
    post_s: list[float] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def readings(self, k: int) -> list[Reading]:
        """The k-th POST of the day: center k % centers, minute k // centers, one reading per room."""
        c, minute = k % self.centers, k // self.centers
        ts = T0_S + minute * 60 + (c % 60)  # the boxes' minutes do not all start on the same second
        return [Reading(f"c{c}", f"z{r}", f"s{r}", Quantity.TEMPERATURE, 2.0 + (c * 7 + r * 3 + minute) % 40 / 10,
                        float(ts)) for r in range(self.rooms)]

    def sink(self, i: int) -> InfluxDB1Sink | InfluxDB2Sink:
        """A box's sink as its config would make it; VictoriaMetrics ignores org, bucket and token."""
        if self.target == "vm":
            return InfluxDB2Sink(InfluxDB2Config.model_validate(
                {"id": f"box{i}", "type": "influxdb2", "url": self.url, "org": "region", "bucket": self.db,
                 "token": "unused"}), {})
        return InfluxDB1Sink(InfluxDB1Config.model_validate(
            {"id": f"box{i}", "type": "influxdb1", "url": self.url, "database": self.db}), {})

    async def post(self, sink: InfluxDB1Sink | InfluxDB2Sink, k: int, slots: asyncio.Semaphore) -> None:
        batch = self.readings(k)
        t = time.perf_counter()
        try:
            await sink.write(batch)
            self.points += len(batch)
        except SinkError:
            self.errors += 1
        except Exception as exc:  # noqa: BLE001  # a task's exception would be lost with it: count it, say it
            self.errors += 1
            print(f"POST {k}: {exc!r}", file=sys.stderr, flush=True)
        finally:
            self.post_s.append(time.perf_counter() - t)
            slots.release()

    async def run(self) -> dict[str, float]:
        """POSTs on schedule until `stop`; a POST waits for a free slot, so a slow server shows as `behind`."""
        sinks = [self.sink(i) for i in range(SINKS)]
        slots, tasks = asyncio.Semaphore(2 * SINKS), set()
        per_s, start = self.speed * self.centers / 60, time.monotonic()
        while not self.stop.is_set():
            due = 1 + int((time.monotonic() - start) * per_s)  # the first POST at once
            while self.posts < due and not self.stop.is_set():
                await slots.acquire()
                task = asyncio.create_task(self.post(sinks[self.posts % SINKS], self.posts, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.posts += 1
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - start
        await asyncio.gather(*tasks)
        for sink in sinks:
            await sink.close()
        return self.summary(elapsed, 1 + int(elapsed * per_s) - self.posts)

    def summary(self, elapsed: float, behind: int) -> dict[str, float]:
        times = sorted(self.post_s) or [0.0]
        ru = os.times()
        return {"elapsed_s": round(elapsed, 1), "posts": self.posts, "points": self.points, "errors": self.errors,
                "points_per_s": round(self.points / elapsed, 1) if elapsed else 0.0, "behind_posts": behind,
                "post_ms_median": round(statistics.median(times) * 1000, 1),
                "post_ms_p99": round(times[int(0.99 * (len(times) - 1))] * 1000, 1),
                "cpu_s": round(ru.user + ru.system, 1)}


async def amain(feed: Feed) -> dict[str, float]:
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, feed.stop.set)
    return await feed.run()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.hub_readings")
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--centers", type=int, required=True)
    ap.add_argument("--rooms", type=int, required=True)
    ap.add_argument("--speed", type=float, default=1.0, help="simulated minutes per real minute")
    ap.add_argument("--target", choices=("influxdb1", "vm"), default="influxdb1")
    args = ap.parse_args()
    feed = Feed(args.url, args.db, args.centers, args.rooms, args.speed, args.target)
    print(json.dumps(asyncio.run(amain(feed))), flush=True)


if __name__ == "__main__":
    main()
