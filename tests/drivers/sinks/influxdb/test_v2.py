"""`type: influxdb2` through influxdb-client against VictoriaMetrics' /api/v2/write (no InfluxDB 2.x/3.x
server can be installed here): schema, exact values and ms timestamps, no duplicates on resend,
server stopped and started, tokens from file/env that never show in errors."""

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
from drivers.sinks.influxdb import InfluxDB2Config, InfluxDB2Sink
from tests.peers import VictoriaMetrics, wait_until

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]
T0 = 1_763_800_000.123
COMMODITIES = {"room1": "kiwifruit"}
TOKEN = "s3cr3t-token-value"


def sink_for(url: str, **options: Any) -> InfluxDB2Sink:
    cfg = InfluxDB2Config.model_validate(
        {"id": "v2", "type": "influxdb2", "url": url, "org": "o", "bucket": "b", "token": TOKEN, **options}
    )
    return InfluxDB2Sink(cfg, COMMODITIES)


def sample_readings(site: str, n: int, t0: float = T0) -> list[Reading]:
    out = []
    for i in range(n):
        ts = round(t0 + i * 60.007, 3)
        out.append(Reading(site, "room1", "s1", Quantity.TEMPERATURE, round(0.5 + i * 0.001, 4), ts))
        out.append(Reading(site, "room1", "s1", Quantity.HUMIDITY, round(90.25 - i * 0.01, 4), ts))
        out.append(Reading(site, "room2", "s2", Quantity.TEMPERATURE, round(-18.5 + i * 0.002, 4), ts + 0.001))
    return out


def stored(tmp_path: Path, readings: list[Reading]) -> tuple[Journal, list[Reading]]:
    journal = Journal(tmp_path / "journal.db")
    return journal, journal.readings.append(readings)


def exported(vm: VictoriaMetrics, site: str, measurement: str = "readings") -> set[tuple[Any, ...]]:
    """(ms, zone, sensor, quantity, value) per sample; a duplicate would show as a repeated timestamp."""
    out: list[tuple[Any, ...]] = []
    for s in vm.export(f'{{__name__=~"{measurement}_.+", site="{site}"}}'):
        m = s["metric"]
        field = m["__name__"][len(measurement) + 1:]
        out += [(ts, m["zone"], m["sensor"], field, v) for ts, v in zip(s["timestamps"], s["values"], strict=True)]
    assert len(out) == len(set(out)), "duplicate samples"
    return set(out)


def expected(readings: list[Reading]) -> set[tuple[Any, ...]]:
    return {(round(r.ts * 1000), r.zone, r.sensor, r.quantity.value, r.value) for r in readings if r.good}


async def test_readings_read_back_exactly(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    _, rs = stored(tmp_path, sample_readings("v2-exact", 20))
    sink = sink_for(victoria.url)
    await sink.write(rs)
    await sink.close()
    assert exported(victoria, "v2-exact") == expected(rs)
    labels = {s["metric"]["zone"]: s["metric"] for s in victoria.export('{site="v2-exact"}')}
    assert labels["room1"]["commodity"] == "kiwifruit" and "commodity" not in labels["room2"]


async def test_faults_do_not_enter_readings(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    fault = Reading("v2-fault", "room1", "s1", Quantity.TEMPERATURE, 85.0, T0, Quality.FAULT, "known error value 85")
    _, rs = stored(tmp_path, [fault, *sample_readings("v2-fault", 2, T0 + 60)])
    await sink_for(victoria.url).write(rs)
    assert all(v != 85.0 for *_, v in exported(victoria, "v2-fault"))
    faults = victoria.export('{__name__="sensor_faults_value", site="v2-fault"}')
    assert [(s["metric"]["quantity"], s["values"], s["timestamps"]) for s in faults] == [
        ("temperature", [85.0], [round(T0 * 1000)])
    ]  # VictoriaMetrics drops the string field `note`; InfluxDB keeps it


async def test_resend_makes_no_duplicate(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    _, rs = stored(tmp_path, sample_readings("v2-resend", 50))
    sink = sink_for(victoria.url, gzip=False)
    await sink.write(rs)
    await sink.write(rs)
    await sink.write(rs[10:70])
    assert exported(victoria, "v2-resend") == expected(rs)  # exported() fails on a repeated sample


async def test_token_from_file_and_env(victoria: VictoriaMetrics, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    monkeypatch.setenv("CC_TEST_TOKEN", TOKEN)
    _, rs = stored(tmp_path, sample_readings("v2-token", 1))
    for options in ({"token_file": str(tmp_path / "token")}, {"token_env": "CC_TEST_TOKEN"}):
        cfg = InfluxDB2Config.model_validate(
            {"id": "v2", "type": "influxdb2", "url": victoria.url, "org": "o", "bucket": "b", **options}
        )
        sink = InfluxDB2Sink(cfg, {})
        await sink.write(rs)
        await sink.close()
        assert TOKEN not in repr(cfg) and TOKEN not in str(cfg.model_dump())
    assert exported(victoria, "v2-token") == expected(rs)


async def test_missing_token_file_is_a_retryable_error(tmp_path: Path) -> None:
    cfg = InfluxDB2Config.model_validate({"id": "v2", "type": "influxdb2", "url": "http://127.0.0.1:9", "org": "o",
                                          "bucket": "b", "token_file": str(tmp_path / "absent")})
    _, rs = stored(tmp_path, sample_readings("x", 1))
    with pytest.raises(SinkError) as err:
        await InfluxDB2Sink(cfg, {}).write(rs)
    assert err.value.retryable and "token_file" in str(err.value) and "absent" in str(err.value)


async def test_unreachable_server_error_names_sink_not_token(tmp_path: Path) -> None:
    from tests.conftest import free_port

    _, rs = stored(tmp_path, sample_readings("x", 1))
    with pytest.raises(SinkError) as err:
        await sink_for(f"http://127.0.0.1:{free_port()}", timeout=2).write(rs)
    assert err.value.retryable and "influxdb2:v2" in str(err.value) and TOKEN not in str(err.value)


async def test_server_stopped_and_started_mid_run(tmp_path: Path) -> None:
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    try:
        journal = Journal(tmp_path / "journal.db")
        f = Forwarder(sink_for(server.url, timeout=2), journal, ManualClock(T0), Stats(), poll_interval=0.05,
                      backoff_initial=0.05, backoff_max=0.5, rng=random.Random(3))
        task = asyncio.create_task(f.run())
        all_readings: list[Reading] = []

        async def add(n: int, t0: float) -> int:
            new = await asyncio.to_thread(journal.readings.append, sample_readings("v2-restart", n, t0))
            all_readings.extend(new)
            f.notify(new)
            return int(new[-1].id or 0)

        def cursor() -> int:
            return journal.cursors.get("sink:v2")

        try:
            last = await add(100, T0)
            await asyncio.to_thread(wait_until, lambda: cursor() == last, 30, "first part forwarded")
            await asyncio.to_thread(server.stop)
            confirmed = cursor()
            last = await add(100, T0 + 10_000)
            await asyncio.to_thread(wait_until, lambda: f.state.failures >= 3, 30, "three failed attempts")
            assert cursor() == confirmed and f.state.connected is False
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(wait_until, lambda: cursor() == last, 60, "backlog forwarded after restart")
        finally:
            await stop_all([f], [task])
        assert exported(server, "v2-restart") == expected(all_readings)
    finally:
        server.stop()


class Watched(InfluxDB2Sink):
    """Counts the writes on the wire at once, and stops the server just before write number `stop_at`."""

    def __init__(self, cfg: InfluxDB2Config, server: VictoriaMetrics, stop_at: int) -> None:
        super().__init__(cfg, COMMODITIES)
        self.server, self.stop_at = server, stop_at
        self.lock = threading.Lock()
        self.writes = self.on_wire = self.most_on_wire = 0

    def _write(self, body: bytes) -> None:
        with self.lock:
            self.writes += 1
            self.on_wire += 1
            self.most_on_wire = max(self.most_on_wire, self.on_wire)
            stop = self.writes == self.stop_at
        try:
            if stop:
                self.server.stop()
            super()._write(body)
        finally:
            with self.lock:
                self.on_wire -= 1


async def test_backlog_two_batches_at_a_time_server_stopped_mid_drain(tmp_path: Path) -> None:
    """influxdb-client's write API from two threads at once; the server gone at the 10th batch of 60."""
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    try:
        journal, rs = stored(tmp_path, sample_readings("v2-pipe", 1000))
        cfg = InfluxDB2Config.model_validate({"id": "v2", "type": "influxdb2", "url": server.url, "org": "o",
                                              "bucket": "b", "token": TOKEN, "batch_size": 50, "timeout": 2})
        sink = Watched(cfg, server, stop_at=10)
        f = Forwarder(sink, journal, ManualClock(T0), Stats(), poll_interval=0.05, backoff_initial=0.05,
                      backoff_max=0.5, rng=random.Random(5))
        task = asyncio.create_task(f.run())
        try:
            await asyncio.to_thread(wait_until, lambda: f.state.failures >= 2, 30, "two failed attempts")
            assert journal.cursors.get("sink:v2") <= 9 * 50
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(wait_until, lambda: journal.cursors.get("sink:v2") == rs[-1].id, 60, "backlog forwarded")
        finally:
            await stop_all([f], [task])
            await sink.close()
        assert exported(server, "v2-pipe") == expected(rs)
        assert f.state.sent == len(rs) and sink.most_on_wire <= 2
    finally:
        server.stop()
