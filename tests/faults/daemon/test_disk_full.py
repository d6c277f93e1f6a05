"""Disk nearly full, then full, then freed, under a running daemon fed by a real Mosquitto (QoS 1).

- nearly full (less than `storage.min_free_mb` left): the box-health alarm fires and its SMS goes out,
  readings and other alarms keep working;
- full: readings cannot be journaled, so they are not acknowledged to the broker; the daemon keeps
  running (no core task dies), nothing is corrupted;
- freed: the broker redelivers what was not acknowledged, every published reading is in the journal
  exactly once, alarms and SMS work again (resolve notices go out).

The journal sits on a 6 MB tmpfs when the tests run as root (a filler file eats the space); otherwise
`PRAGMA max_page_count` stops the journal from growing and the disk-free probe is told the same story.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.storage import disk as health
from daemon.storage.journal import Journal
from tests.conftest import make_config
from tests.drivers.sensors.mqtt.conftest import Broker
from tests.drivers.sensors.mqtt.test_driver import journal_values, mqtt_driver, uid, until

pytestmark = pytest.mark.peer
MB = 1_000_000

CONFIG = """
site: {{id: full, name: 满盘测试}}
storage: {{journal: "{journal}", flush_interval: 0.05, commit_interval: 0.05, min_free_mb: 3, reserve_mb: 0}}
mqtt: {{host: 127.0.0.1, port: {port}, client_id: "{client}", persistent_session: true, qos: 1,
        reconnect_min: 1, reconnect_max: 2}}
zones:
  - id: z1
    name: 1号库
    commodity: mandarin
    alarms: {{temperature: {{high: 8.0, delay: 0s, clear_delay: 0s}}, no_data: false}}
sensors:
  - {{id: m1, zone: z1, type: mqtt, format: json, topic: "{topic}", values: {{temperature: t}}}}
notifiers:
  - {{id: out, type: console, stream: log}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
api: {{enabled: false}}
"""


class Disk:
    """The filesystem under the journal: `nearly_full()`, `full()` and `freed()`."""

    def __init__(self, root: Path, tmpfs: bool) -> None:
        self.root, self.tmpfs = root, tmpfs
        self.filler = root / "filler"
        self.journal: Journal | None = None
        self._free_mb = health.free_mb

    def _fill(self, leave: int) -> None:
        if self.tmpfs:
            self.filler.unlink(missing_ok=True)
            size = os.statvfs(self.root).f_bavail * os.statvfs(self.root).f_frsize - leave
            with self.filler.open("wb") as f:
                os.posix_fallocate(f.fileno(), 0, max(size, 1))
        else:
            assert self.journal is not None
            health.free_mb = lambda _path: leave / MB  # type: ignore[assignment]
            if leave == 0:  # the journal may not grow by one page more
                with self.journal.transaction() as db:
                    pages = db.execute("PRAGMA page_count").fetchone()[0]
                    db.execute(f"PRAGMA max_page_count={pages}")

    def nearly_full(self) -> None:
        self._fill(2 * MB)

    def full(self) -> None:
        self._fill(0)

    def freed(self) -> None:
        self.filler.unlink(missing_ok=True)
        health.free_mb = self._free_mb  # type: ignore[assignment]
        if not self.tmpfs and self.journal is not None:
            with self.journal.transaction() as db:
                db.execute("PRAGMA max_page_count=4294967294")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    root = tmp_path / "small"
    root.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(root)], capture_output=True).returncode == 0
    d = Disk(root, mounted)
    try:
        yield d
    finally:
        d.freed()
        if mounted:
            subprocess.run(["umount", "-l", str(root)], check=True)


class Fed:
    """A daemon with its journal on `root`, fed by `broker` on a topic of its own; `publish()` records values."""

    def __init__(self, broker: Broker, root: Path, config: str, name: str) -> None:
        self.broker, self.topic, self.published = broker, f"faults/{name}/{uid()}", list[float]()
        self.cfg = make_config(root, config.format(journal=root / "journal.db", port=broker.port,
                                                   client=f"{name}-{uid()}", topic=self.topic))
        self.d = Daemon(self.cfg, clock=Clock(speed=60))  # the box-health check runs every real second

    async def publish(self, t: float) -> None:
        self.published.append(t)
        await asyncio.to_thread(self.broker.publish, self.topic, json.dumps({"t": t}))


def sms(d: Daemon) -> list[str]:
    """What the console channel sent: the outbox rows marked sent."""
    return [r.text for r in d.journal.outbox.find(state="sent", limit=100_000)]


def core_tasks_alive(d: Daemon) -> bool:
    return all(not t.done() for t in d._tasks if t.get_name() in ("pipeline", "dispatcher", "ticker", "box-health"))


@pytest.mark.asyncio
async def test_disk_nearly_full_then_full_then_freed(broker: Broker, disk: Disk) -> None:
    fed = Fed(broker, disk.root, CONFIG, "full")
    d, cfg, publish, published = fed.d, fed.cfg, fed.publish, fed.published
    disk.journal = d.journal
    await d.start()
    try:
        await until(lambda: mqtt_driver(d).connected, "the MQTT connection")
        await publish(5.0)
        await until(lambda: journal_values(d, "m1") == [5.0], "the first reading journaled")

        # nearly full: box-health alarm and its SMS; another alarm fires and is sent as usual
        disk.nearly_full()
        await until(lambda: any(a.kind == "box_health" and a.state == "firing" for a in d.journal.alerts.find()),
                    "the box-health alarm")
        await publish(9.5)
        await until(lambda: any(a.kind == "temp_high" for a in d.journal.alerts.find()), "the temperature alarm")
        await until(lambda: any("box" in t or "存储" in t for t in sms(d)) and any("9.5" in t for t in sms(d)),
                    "both alarms sent")

        # full: keep publishing until the journal refuses a batch (the WAL may still hold a few)
        disk.full()
        t = 10.0
        while d.stats.get("journal_write_errors") == 0:
            assert t < 40, "the journal never refused a write on the full disk"
            t += 0.1
            await publish(round(t, 1))
            await asyncio.sleep(0.05)
        await publish(round(t + 0.1, 1))
        assert journal_values(d, "m1") != published, "readings refused by the journal are not in it"
        assert core_tasks_alive(d)

        # freed: what was not acknowledged comes again, once; alarms and SMS work again
        disk.freed()
        await until(lambda: sorted(v for v in journal_values(d, "m1") if v is not None) == sorted(published),
                    "every published reading journaled after the disk was freed", timeout=60)
        await publish(5.5)
        await until(lambda: any(a.kind == "temp_high" and a.state == "resolved" for a in d.journal.alerts.find()),
                    "the temperature alarm resolved")
        await until(lambda: any(a.kind == "box_health" and a.state == "resolved" for a in d.journal.alerts.find()),
                    "the box-health alarm resolved")
        await until(lambda: sum(1 for t in sms(d) if "恢复" in t) >= 2, "both resolve notices sent")
        assert core_tasks_alive(d)
        assert d.journal.quick_check() == "ok"
        print(f"{'tmpfs' if disk.tmpfs else 'max_page_count'}: {len(published)} readings, "
              f"{d.stats.get('journal_write_errors')} refused batches, {d.stats.get('driver_crashes')} driver restarts,"
              f" {d.stats.get('task_errors')} core task restarts, {d.stats.get('alarm_write_errors')} alarm writes refused")
    finally:
        with contextlib.suppress(Exception):
            disk.freed()
        await d.stop()
        disk.journal = None
    assert Journal(cfg.storage.journal).quick_check() == "ok"
