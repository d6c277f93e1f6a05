"""A restart's backlog replay (issue 13): while the daemon is down its persistent session collects a burst of
20,000 readings from 200 MQTT sensors whose payloads carry no device time. The next start takes them in one
go; every one is journaled once at a timestamp of its own (no two rows of a series share one, arrival order
kept), InfluxDB keeps all 20,000 points (same series and ms would overwrite), and each such reading is
marked as replayed in the public API, since its time is the arrival time and not the measurement time.

The broker is configured to keep the whole backlog: `max_queued_messages 0` (no limit; Mosquitto's default
1000 per client would drop the rest while acknowledging it to the publisher) and `max_inflight_messages 1000`
(proof.QueueingBroker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.faults.daemon.proof import (
    DaemonProcess,
    JournalProbe,
    Publisher,
    QueueingBroker,
    daemon_config,
    open_session,
    sensor_ids,
    settle,
    tally,
    topic,
)
from tests.peers import InfluxD, wait_until

pytestmark = pytest.mark.peer
SENSORS = 200
PER_SENSOR = 100  # 20,000 in all, published round-robin (as 200 devices reporting while the daemon was down)


def _replayed_flag(reading_json: dict[str, Any]) -> bool:
    """Whether the API marks a reading as replayed by the broker (stamped at arrival, not when measured)."""
    return reading_json.get("replayed") is True


def api_readings(port: int) -> list[dict[str, Any]]:
    """Every reading through `GET /api/v1/readings` (one page holds them all)."""
    body = httpx.get(f"http://127.0.0.1:{port}/api/v1/readings", params={"limit": 100_000}, timeout=60).json()
    return list(body["readings"])


def api_up(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code < 500


def test_a_replayed_burst_keeps_every_reading_at_its_own_time(influxd: InfluxD, influx_db: str,
                                                              tmp_path: Path) -> None:
    broker = QueueingBroker(tmp_path / "mosquitto")
    broker.start()
    sensors, api_port = sensor_ids(SENSORS), free_port()
    config = daemon_config(tmp_path, broker.port, influxd, influx_db, sensors, device_time=False,
                           api_port=api_port)
    open_session(broker.port, "coldchain-proof", [topic(x) for x in sensors])
    d, probe = DaemonProcess(config), JournalProbe(tmp_path / "journal.db")
    pub = Publisher(broker.port, "proof-publisher", device_time=False)
    try:
        for _ in range(PER_SENSOR):  # the daemon is down: the session keeps all of it
            for s in sensors:
                pub.publish(s)
        pub.wait_all_acked()
        d.start()
        settle(probe, len(pub.sent), deadline_s=120)
        wait_until(lambda: api_up(api_port), 30, "the API")
        not_marked = sum(1 for r in api_readings(api_port) if not _replayed_flag(r))
        d.stop()
        t = tally(tmp_path / "journal.db", influxd, influx_db, pub)
    finally:
        d.stop()
        pub.close()
        broker.stop()
    print(t.line() + f"; not marked replayed {not_marked}")
    assert t.acked == t.published == SENSORS * PER_SENSOR
    faults = {**t.faults(), "not marked replayed": not_marked}
    assert faults == dict.fromkeys(faults, 0), f"{t.line()}; not marked replayed {not_marked}; e.g. {t.examples[:5]}"
    assert t.journal_rows == t.influx_points == t.published, t.line()
