"""The region's readings through the broker to the hub's workers, as the boxes' `mqtt_uplink` sink sends them:
one message per reading on `coldchain/<site>/readings/<zone>/<sensor>/<quantity>` with the sink's own payload
(drivers/sinks/mqtt_uplink.payload), each box's minute one QoS 1 batch of `rooms` messages.

The workers keep only each center's newest reading time (centers.last_ts, lag_ms), so the readings are stamped
with the wall clock at publish: the hub's lag_ms is then the real delay from a box's publish to the hub's write,
and `check_lag` can compare every center's row with what the readings it was sent imply.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from daemon.ports.model import Quantity, Reading
from drivers.sinks.mqtt_uplink import payload


class UplinkReadings:
    """A publisher thread of `centers` boxes x `rooms` readings a simulated minute, `speed` x real time."""

    def __init__(self, port: int, centers: int, rooms: int, speed: float = 1.0) -> None:
        self.port, self.centers, self.rooms, self.speed = port, centers, rooms, speed
        self.sent = 0
        self.newest: dict[str, int] = {}  # site -> newest reading ts (ms) the broker acknowledged
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="uplink-readings", daemon=True)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-uplink", protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(100)

    def batch(self, k: int) -> tuple[str, list[tuple[str, bytes]], int]:
        """The k-th box-minute: center k % centers, one reading per room, stamped now (ms)."""
        site, now = f"c{k % self.centers}", time.time()
        out = []
        for r in range(self.rooms):
            reading = Reading(site, f"z{r}", f"s{r}", Quantity.TEMPERATURE, 2.0 + (k + r) % 40 / 10, now)
            topic = f"coldchain/{site}/readings/{reading.zone}/{reading.sensor}/{reading.quantity.value}"
            out.append((topic, payload(reading, "kiwifruit")))
        return site, out, round(now * 1000)

    def _run(self) -> None:
        per_s, start, k = self.speed * self.centers / 60, time.monotonic(), 0
        while not self._stop.is_set():
            due = 1 + int((time.monotonic() - start) * per_s)
            while k < due and not self._stop.is_set():
                site, msgs, ts = self.batch(k)
                infos = [self.client.publish(topic, body, qos=1) for topic, body in msgs]
                for info in infos:
                    info.wait_for_publish(60)
                self.sent += len(msgs)
                self.newest[site] = max(ts, self.newest.get(site, 0))
                k += 1
            time.sleep(0.01)

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> float:
        """Stop publishing (the batch in hand is finished and acknowledged); seconds it published."""
        self._stop.set()
        self._thread.join(120)
        elapsed = time.monotonic() - self._started
        self.client.disconnect()
        self.client.loop_stop()
        return elapsed


def check_lag(conn: psycopg.Connection[Any], newest: dict[str, int]) -> dict[str, Any]:
    """Every center's row against what its readings imply: last_ts the newest reading sent, lag_ms its arrival
    minus that time. `wrong` lists the centers that differ (empty when the lag figure is right)."""
    rows = conn.execute("SELECT site, last_ts, lag_ms, (extract(epoch FROM last_received) * 1000)::bigint "
                        "FROM centers WHERE site = ANY(%s)", (list(newest),)).fetchall()
    conn.rollback()
    got = {site: (last_ts, lag, received) for site, last_ts, lag, received in rows}
    wrong = [site for site, ts in newest.items()
             if site not in got or got[site][0] != ts or abs(got[site][2] - ts - got[site][1]) > 1]
    lags = sorted(got[s][1] for s in newest if s in got)
    return {"centers": len(newest), "wrong": wrong,
            "lag_ms_median": lags[len(lags) // 2] if lags else None, "lag_ms_max": lags[-1] if lags else None}
