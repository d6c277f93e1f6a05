"""Uplink outage with 50 sensors: the real InfluxDB is stopped for hours of (accelerated) cold-room time.

Throughout, every sensor's history keeps growing in the journal with no gap; afterwards the backlog is
sent oldest first (the journal ids the server confirmed only ever increase) and InfluxDB holds every
journaled reading exactly once, at its own timestamp.

Default: 10 simulated hours (20 s). `COLDCHAIN_LONG=1`: two simulated days.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.ports.model import Reading
from daemon.storage.journal import Journal
from tests.conftest import make_config
from tests.daemon.app.test_sigkill import influx_rows
from tests.drivers.sensors.mqtt.test_driver import until
from tests.peers import InfluxD

pytestmark = pytest.mark.peer
LONG = os.environ.get("COLDCHAIN_LONG") == "1"
SENSORS = 50
INTERVAL = 600  # one reading per sensor every 10 min of cold-room time
SPEED = 1800  # 20 real seconds are 10 hours
OUTAGE_S = 96 if LONG else 20  # real seconds

HEAD = """
site: {{id: outage, name: 断网测试}}
storage: {{journal: journal.db, flush_interval: 0.1, commit_interval: 0.1}}
zones:
  - {{id: z1, name: 1号库, commodity: kiwifruit, alarms: {{no_data: false}}}}
sinks:
  - {{id: central, type: influxdb1, url: "{url}", database: {db}, batch_size: 500, timeout: 2}}
api: {{enabled: false}}
sensors:
"""
SENSOR = "  - {{id: s{i:02d}, zone: z1, type: simulated, setpoint: 0.5, interval: {interval}, seed: {i}}}\n"


def gaps(d: Daemon) -> dict[str, float]:
    """The longest stretch without a reading, per sensor, in cold-room seconds (including up to now)."""
    out: dict[str, float] = {}
    now = d.clock.now()
    for i in range(SENSORS):
        ts = [r.ts for r in d.journal.readings.query(sensor=f"s{i:02d}", limit=1_000_000)]
        out[f"s{i:02d}"] = max([b - a for a, b in itertools.pairwise(ts)] + [now - ts[-1] if ts else now])
    return out


@pytest.mark.asyncio
async def test_long_outage_with_50_sensors_backfills_in_order(influxd: InfluxD, influx_db: str,
                                                            tmp_path: Path) -> None:
    text = HEAD.format(url=influxd.url, db=influx_db) + "".join(
        SENSOR.format(i=i, interval=INTERVAL) for i in range(SENSORS))
    d = Daemon(make_config(tmp_path, text), clock=Clock(speed=SPEED))
    fw = d.forwarders[0]
    fw.backoff_max = 2.0  # real seconds; in the field 60
    confirmed: list[tuple[int, int]] = []  # (first, last) journal id of each batch the server took
    write = fw.sink.write

    async def recording_write(batch: Sequence[Reading]) -> None:
        await write(batch)
        confirmed.append((int(batch[0].id or 0), int(batch[-1].id or 0)))

    fw.sink.write = recording_write  # type: ignore[method-assign]
    # a sensor may be late by the loop's lag on a loaded machine, never by the outage
    allowed_gap = 3 * INTERVAL

    await d.start()
    try:
        await until(lambda: d.journal.cursors.get("sink:central") > 0, "the first readings forwarded")
        influxd.stop()
        try:
            # a batch the server took just before it stopped may still be confirming: the forwarder is sequential,
            # so once a write has failed nothing earlier is in flight and the cursor is the outage's starting point
            failures = fw.state.failures
            await until(lambda: fw.state.failures > failures, "the first write refused by the stopped InfluxDB")
            await until(lambda: d.journal.cursors.get("sink:central") == fw.state.cursor,
                        "the last confirmed batch's cursor on disk")  # it commits while the next batch is sent
            start, cursor = time.monotonic(), d.journal.cursors.get("sink:central")
            while time.monotonic() - start < OUTAGE_S:  # the local history stays complete throughout
                await asyncio.sleep(2)
                worst = max(gaps(d).items(), key=lambda kv: kv[1])
                assert worst[1] <= allowed_gap, f"{worst[0]} has no reading for {worst[1]:.0f} s during the outage"
            assert d.journal.cursors.get("sink:central") == cursor, "something was confirmed while InfluxDB was down"
            assert fw.state.failures > 0
            waiting = d.journal.readings.max_id() - cursor
            hours = OUTAGE_S * SPEED / 3600
            assert waiting >= SENSORS * hours * 3600 / INTERVAL * 0.8, f"only {waiting} readings in {hours:.0f} h"
        finally:
            influxd.start()
        backlog_end = d.journal.readings.max_id()
        await until(lambda: d.journal.cursors.get("sink:central") >= backlog_end,
                    "the backlog forwarded after InfluxDB came back", timeout=120)
    finally:
        await d.stop()
    journal = Journal(d.journal.path)
    cursor = journal.cursors.get("sink:central")

    # in order: each confirmed batch starts right after the one before
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(confirmed)), "a batch out of order"
    expected = {(round(r.ts * 1000), r.zone, r.sensor, r.quantity.value, r.value)
                for r in journal.readings.read_after(0, 1_000_000) if int(r.id or 0) <= cursor}  # the rest: after the test
    got, n = influx_rows(influxd, influx_db)
    assert n == len(got) == len(expected)
    assert got == expected
    print(f"{OUTAGE_S * SPEED / 3600:.0f} h outage: {waiting} readings backfilled, {len(expected)} in all")
