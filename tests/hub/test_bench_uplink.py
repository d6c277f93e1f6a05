"""The hub bench's readings through the broker (bench/hub_uplink.py) at a tiny size against a real Mosquitto and
PostgreSQL: the workers' lag for every center is what the readings sent imply, and the check catches one that
is not. Counts only; rates belong to `make bench`."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from bench.hub import day, through_broker
from bench.hub_uplink import UplinkReadings, check_lag
from hub.contract import Reading, parse
from tests.hub.postgres import Postgres

pytestmark = pytest.mark.peer


def test_the_uplink_batch_is_what_the_hub_reads_as_readings() -> None:
    site, msgs, ts = UplinkReadings(0, centers=3, rooms=2).batch(4)
    assert site == "c1" and [t for t, _ in msgs] == ["coldchain/c1/readings/z0/s0/temperature",
                                                     "coldchain/c1/readings/z1/s1/temperature"]
    assert [parse(t, body) for t, body in msgs] == [Reading("c1", ts), Reading("c1", ts)]


def test_every_centers_lag_matches_the_readings_sent(postgres: Postgres) -> None:
    cpu: dict[str, Any] = {}
    through_broker(postgres, list(day(3, 2)), 1, 500, cpu, "uplink", (3, 4, 600.0))  # a box-minute every 33 ms
    lag = cpu["uplink"]
    assert lag["readings"] > 0 and lag["readings"] % 4 == 0
    assert lag["centers"] == 3 and lag["wrong"] == []
    with psycopg.connect(postgres.dsn("uplink")) as conn:
        newest = {site: ts for site, ts in conn.execute("SELECT site, last_ts FROM centers").fetchall()}
        assert check_lag(conn, newest)["wrong"] == []
        newest["c1"] += 1  # a reading the hub never got
        assert check_lag(conn, newest)["wrong"] == ["c1"]
