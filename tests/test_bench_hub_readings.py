"""The hub bench's readings (bench/hub_tsdb.py, bench/hub_readings.py) at a tiny size against a real InfluxDB
1.6.7 and a real VictoriaMetrics: every reading sent is a distinct point the server counts. Counts only; rates belong to `make bench`."""

from __future__ import annotations

import pytest

from bench.hub_readings import Feed
from bench.hub_tsdb import Readings
from tests.peers import wait_until

pytestmark = pytest.mark.peer


def test_the_readings_child_writes_distinct_points_the_server_counts() -> None:
    with Readings(centers=3, rooms=4, speed=1200.0) as readings:  # 60 POSTs/s: a box's minute every 17 ms
        readings.start()
        wait_until(lambda: readings.influx.query('SELECT COUNT("temperature") FROM "readings"', "region"), 60,
                   "the first points in InfluxDB")
        out = readings.stop()
    assert out["sent"]["errors"] == 0 and out["sent"]["posts"] > 0
    assert out["points_counted"] == out["sent"]["points"] == 4 * out["sent"]["posts"]


def test_every_reading_sent_to_victoriametrics_is_a_sample_it_counts() -> None:
    with Readings(centers=3, rooms=4, speed=1200.0, target="vm") as readings:
        readings.start()
        wait_until(lambda: readings.vm.export('{__name__="readings_temperature"}'), 60,
                   "the first samples in VictoriaMetrics")
        out = readings.stop()
        samples = sum(len(s["timestamps"]) for s in readings.vm.export('{__name__="readings_temperature"}'))
    assert out["sent"]["errors"] == 0 and out["sent"]["posts"] > 0
    assert out["points_counted"] == samples == out["sent"]["points"] == 4 * out["sent"]["posts"]


def test_each_post_is_one_box_and_minute() -> None:
    feed = Feed("http://unused", "x", centers=3, rooms=2)
    first, fourth = feed.readings(0), feed.readings(3)
    assert [(r.site, r.zone) for r in first] == [("c0", "z0"), ("c0", "z1")]
    assert [r.site for r in fourth] == ["c0", "c0"] and fourth[0].ts - first[0].ts == 60  # c0's next minute
