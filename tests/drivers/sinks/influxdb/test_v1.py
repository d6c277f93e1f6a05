"""`type: influxdb1` against a real InfluxDB 1.6.7: schema, exact values and ms timestamps, no duplicates
on resend, a server that goes away and comes back, and a point the server refuses."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from daemon.forwarding.forwarder import Forwarder, stop_all
from daemon.ports.clock import ManualClock
from daemon.ports.errors import SinkError
from daemon.ports.model import Quality, Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from drivers.sinks.influxdb import InfluxDB1Config, InfluxDB1Sink
from tests.peers import InfluxD, wait_until

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]
T0 = 1_763_800_000.123  # ms-exact in float seconds
COMMODITIES = {"room1": "kiwifruit"}


def sink_for(url: str, db: str, **options: Any) -> InfluxDB1Sink:
    cfg = InfluxDB1Config.model_validate({"id": "up", "type": "influxdb1", "url": url, "database": db, **options})
    return InfluxDB1Sink(cfg, COMMODITIES)


def sample_readings(n: int, t0: float = T0) -> list[Reading]:
    """Temperature and humidity of two sensors in two rooms, odd values, ms-spaced timestamps."""
    out = []
    for i in range(n):
        ts = round(t0 + i * 60.007, 3)
        out.append(Reading("c1", "room1", "s1", Quantity.TEMPERATURE, round(0.5 + i * 0.001, 4), ts))
        out.append(Reading("c1", "room1", "s1", Quantity.HUMIDITY, round(90.25 - i * 0.01, 4), ts))
        out.append(Reading("c1", "room 2,东", "s=2", Quantity.TEMPERATURE, round(-18.5 + i * 0.002, 4), ts + 0.001))
    return out


def stored(tmp_path: Path, readings: list[Reading]) -> tuple[Journal, list[Reading]]:
    journal = Journal(tmp_path / "journal.db")
    return journal, journal.readings.append(readings)


def as_rows(points: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(time, zone, sensor, quantity, value) for each field set in each point."""
    out = set()
    for p in points:
        for q in ("temperature", "humidity"):
            if p.get(q) is not None:
                out.add((p["time"], p["zone"], p["sensor"], q, p[q]))
    return out


def expected(readings: list[Reading]) -> set[tuple[Any, ...]]:
    return {(round(r.ts * 1000), r.zone, r.sensor, r.quantity.value, r.value) for r in readings if r.good}


async def test_readings_read_back_exactly(influxd: InfluxD, influx_db: str, tmp_path: Path) -> None:
    _, rs = stored(tmp_path, sample_readings(20))
    sink = sink_for(influxd.url, influx_db)
    await sink.write(rs)
    await sink.close()
    points = influxd.points(influx_db, "readings")
    assert as_rows(points) == expected(rs)
    assert len(points) == 40  # temperature + humidity of s1 share a point: same series and time
    room1 = [p for p in points if p["zone"] == "room1"]
    assert {p["commodity"] for p in room1} == {"kiwifruit"} and {p["site"] for p in points} == {"c1"}
    assert {p["commodity"] for p in points if p["zone"] != "room1"} == {None}  # no commodity: no tag
    assert influxd.points(influx_db, "sensor_faults") == []


async def test_fault_readings_go_to_sensor_faults_only(influxd: InfluxD, influx_db: str, tmp_path: Path) -> None:
    faults = [
        Reading("c1", "room1", "s1", Quantity.TEMPERATURE, 85.0, T0, Quality.FAULT, "known error value 85"),
        Reading("c1", "room1", "s1", Quantity.HUMIDITY, None, T0 + 1, Quality.FAULT, 'no value "null"'),
    ]
    _, rs = stored(tmp_path, [*faults, *sample_readings(1, T0 + 60)])
    await sink_for(influxd.url, influx_db).write(rs)
    got = sorted(influxd.points(influx_db, "sensor_faults"), key=lambda p: p["time"])
    assert [(p["time"], p["quantity"], p["value"], p["note"]) for p in got] == [
        (round(T0 * 1000), "temperature", 85.0, "known error value 85"),
        (round(T0 * 1000) + 1000, "humidity", None, 'no value "null"'),
    ]
    assert got[0]["commodity"] == "kiwifruit" and got[0]["sensor"] == "s1"
    assert all(p["temperature"] != 85.0 for p in influxd.points(influx_db, "readings"))


async def test_resend_makes_no_duplicate(influxd: InfluxD, influx_db: str, tmp_path: Path) -> None:
    _, rs = stored(tmp_path, sample_readings(50))
    sink = sink_for(influxd.url, influx_db, gzip=False)
    await sink.write(rs)
    await sink.write(rs)  # a crash between send and cursor update resends the batch
    await sink.write(rs[10:60])  # and a resend may be cut differently
    counts = influxd.query('SELECT count(temperature) AS t, count(humidity) AS h FROM readings', influx_db)
    assert counts[0]["values"][0][1:] == [100, 50]
    assert as_rows(influxd.points(influx_db, "readings")) == expected(rs)


async def test_unknown_database_is_retryable(influxd: InfluxD, tmp_path: Path) -> None:
    _, rs = stored(tmp_path, sample_readings(1))
    with pytest.raises(SinkError) as err:
        await sink_for(influxd.url, "no_such_db").write(rs)
    assert err.value.retryable and "404" in str(err.value) and "no_such_db" in str(err.value)


async def test_refused_point_is_isolated_by_the_forwarder(influxd: InfluxD, influx_db: str, tmp_path: Path) -> None:
    """A field type conflict (humidity once written as a string) refuses those points only."""
    influxd.write(influx_db, f'readings,site=other humidity="wet" {round(T0 * 1000)}')
    journal, rs = stored(tmp_path, sample_readings(10))
    f = Forwarder(sink_for(influxd.url, influx_db), journal, ManualClock(T0), Stats(), poll_interval=0.05)
    task = asyncio.create_task(f.run())
    try:
        await asyncio.to_thread(wait_until, lambda: journal.cursors.get("sink:up") == rs[-1].id, 30, "cursor at the end")
    finally:
        await stop_all([f], [task])
    assert f.state.rejected == 10  # the ten humidity readings
    got = as_rows([p for p in influxd.points(influx_db, "readings") if p["site"] == "c1"])
    assert got == expected([r for r in rs if r.quantity is Quantity.TEMPERATURE])


async def test_server_stopped_and_started_mid_run(tmp_path: Path) -> None:
    """Readings journaled while the server is down arrive once it is back; the cursor waits for it."""
    server = InfluxD(tmp_path / "influxd")
    server.start()
    try:
        server.create_database("cc")
        journal = Journal(tmp_path / "journal.db")
        f = Forwarder(sink_for(server.url, "cc", timeout=2), journal, ManualClock(T0), Stats(), poll_interval=0.05,
                      backoff_initial=0.05, backoff_max=0.5, rng=random.Random(7))
        task = asyncio.create_task(f.run())
        all_readings: list[Reading] = []

        async def add(n: int, t0: float) -> int:
            new = await asyncio.to_thread(journal.readings.append, sample_readings(n, t0))
            all_readings.extend(new)
            f.notify(new)
            return int(new[-1].id or 0)

        def cursor() -> int:
            return journal.cursors.get("sink:up")

        try:
            last = await add(100, T0)
            await asyncio.to_thread(wait_until, lambda: cursor() == last, 30, "first part forwarded")
            await asyncio.to_thread(server.stop)
            last_confirmed = cursor()
            last = await add(100, T0 + 10_000)
            await asyncio.to_thread(wait_until, lambda: f.state.failures >= 3, 30, "three failed attempts")
            assert cursor() == last_confirmed  # nothing confirmed while the server is away
            assert f.state.connected is False
            last = await add(100, T0 + 20_000)
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(wait_until, lambda: cursor() == last, 60, "backlog forwarded after restart")
        finally:
            await stop_all([f], [task])
        assert f.state.connected is True
        counts = server.query('SELECT count(temperature) AS t, count(humidity) AS h FROM readings', "cc")
        assert counts[0]["values"][0][1:] == [600, 300]
        assert as_rows(server.points("cc", "readings")) == expected(all_readings)
    finally:
        server.stop()


async def test_alarm_events_reach_alarm_events_measurement(influxd: InfluxD, influx_db: str, tmp_path: Path) -> None:
    """The alarm audit log (fired, acknowledged by whom, resolved) is forwarded from its own cursor."""
    from daemon.alarms.lifecycle import AlertManager
    from daemon.alarms.rules import RuleEvent
    from tests.conftest import make_config

    cfg = make_config(tmp_path)
    journal = Journal(tmp_path / "journal.db")
    am = AlertManager(cfg, journal, ManualClock(T0 + 700), Stats())
    key = "z1/s1/temp_high"
    am.apply([RuleEvent("pending", key, "z1", "s1", "temp_high", "warning", T0, T0, 9.0, 8.0, 9.0)])
    am.apply([RuleEvent("fire", key, "z1", "s1", "temp_high", "warning", T0 + 600, T0, 9.2, 8.0, 9.2)])
    aid = journal.alerts.find()[0].id
    am.acknowledge(aid, "zhang", "门没关好")
    journal.readings.append(sample_readings(1))
    f = Forwarder(sink_for(influxd.url, influx_db), journal, ManualClock(T0), Stats(), poll_interval=0.05, site="t1")
    task = asyncio.create_task(f.run())
    try:
        got: list[dict[str, Any]] = []
        for _ in range(400):  # the forwarder runs on this loop: poll without blocking it
            got = await asyncio.to_thread(influxd.points, influx_db, "alarm_events")
            if len(got) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await stop_all([f], [task])
    rows = sorted((p["time"], p["state"], p["alert_id"], p["who"], p["kind"], p["zone"]) for p in got)
    assert [r[1] for r in rows] == ["pending", "firing", "acknowledged"]
    assert rows[1][0] == round((T0 + 600) * 1000) and rows[2][3] == "zhang (web)"
    assert {r[2] for r in rows} == {aid} and {r[4] for r in rows} == {"temp_high"}
    acked = next(p for p in got if p["state"] == "acknowledged")
    assert acked["comment"] == "门没关好" and acked["site"] == "t1"
    assert journal.cursors.get("events:up") == 3


class Watched(InfluxDB1Sink):
    """Counts the POSTs on the wire at once, and stops the server just before POST number `stop_at`."""

    def __init__(self, cfg: InfluxDB1Config, server: InfluxD, stop_at: int) -> None:
        super().__init__(cfg, COMMODITIES)
        self.server, self.stop_at = server, stop_at
        self.lock = threading.Lock()
        self.posts = self.on_wire = self.most_on_wire = 0

    def _post(self, body: bytes) -> None:
        with self.lock:
            self.posts += 1
            self.on_wire += 1
            self.most_on_wire = max(self.most_on_wire, self.on_wire)
            stop = self.posts == self.stop_at
        try:
            if stop:
                self.server.stop()  # the batch beside this one is on the wire, or about to be
            super()._post(body)
        finally:
            with self.lock:
                self.on_wire -= 1


async def test_backlog_two_batches_at_a_time_server_stopped_mid_drain(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A backlog of 60 batches, two on the wire at once, and the server gone at the 10th: afterwards
    every reading is in InfluxDB once and the cursor is at the end."""
    server = InfluxD(tmp_path / "influxd")
    server.start()
    try:
        server.create_database("cc")
        journal, rs = stored(tmp_path, sample_readings(1000))
        cfg = InfluxDB1Config.model_validate({"id": "up", "type": "influxdb1", "url": server.url, "database": "cc",
                                              "batch_size": 50, "timeout": 2})
        sink = Watched(cfg, server, stop_at=10)
        f = Forwarder(sink, journal, ManualClock(T0), Stats(), poll_interval=0.05, backoff_initial=0.05,
                      backoff_max=0.5, rng=random.Random(5))
        task = asyncio.create_task(f.run())
        try:
            await asyncio.to_thread(wait_until, lambda: f.state.failures >= 2, 30, "two failed attempts")
            assert journal.cursors.get("sink:up") <= 9 * 50
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(wait_until, lambda: journal.cursors.get("sink:up") == rs[-1].id, 60, "backlog forwarded")
        finally:
            await stop_all([f], [task])
        counts = server.query('SELECT count(temperature) AS t, count(humidity) AS h FROM readings', "cc")
        assert counts[0]["values"][0][1:] == [2000, 1000]
        assert as_rows(server.points("cc", "readings")) == expected(rs)
        assert f.state.sent == len(rs) and sink.most_on_wire <= 2
        assert "pool is full" not in caplog.text  # one connection per request on the wire
    finally:
        server.stop()


async def test_cursor_past_the_journal_sends_what_it_holds_again(influxd: InfluxD, influx_db: str, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """While the daemon is stopped, the newest rows of the journal vanish under the cursor (the readings
    restored from an older backup). At the next start the cursor is reset, the journal sent again, new
    readings (which take the vanished ids) follow, and InfluxDB holds every reading once."""
    journal, first = stored(tmp_path, sample_readings(20))
    f = Forwarder(sink_for(influxd.url, influx_db), journal, ManualClock(T0), Stats(), poll_interval=0.05)
    task = asyncio.create_task(f.run())
    try:
        await asyncio.to_thread(wait_until, lambda: journal.cursors.get("sink:up") == 60, 30, "cursor at 60")
    finally:
        await stop_all([f], [task])
    with journal.transaction() as db:
        db.execute("DELETE FROM readings WHERE id > 30")
    again = Forwarder(sink_for(influxd.url, influx_db), journal, ManualClock(T0), Stats(), poll_interval=0.05)
    assert again.state.cursor == 0 and again.stats.get("forward_cursor_resets") == 1
    assert "sink:up: cursor at journal id 60, but the newest reading is id 30" in caplog.text
    task = asyncio.create_task(again.run())
    try:
        later = await asyncio.to_thread(journal.readings.append, sample_readings(10, T0 + 100_000))
        again.notify(later)
        assert [r.id for r in later] == list(range(31, 61))  # the vanished ids, other readings
        await asyncio.to_thread(wait_until, lambda: journal.cursors.get("sink:up") == 60, 30, "cursor at 60 again")
    finally:
        await stop_all([again], [task])
    counts = influxd.query('SELECT count(temperature) AS t, count(humidity) AS h FROM readings', influx_db)
    assert counts[0]["values"][0][1:] == [60, 30]  # 40 + 20 temperature, 20 + 10 humidity: none twice
    assert as_rows(influxd.points(influx_db, "readings")) == expected(first + later)
