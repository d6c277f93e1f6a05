"""The disk reserve on a real full filesystem (an 8 MB tmpfs; needs root to mount it, as CI runs).

- a journal write refused by the full disk gives the reserve back and is retried in its space;
- under a running daemon fed by a real Mosquitto (QoS 1): the disk fills up; the reserve is released, the
  box-health "disk full" alarm and a temperature alarm fire and their SMS are stored and sent while the
  disk is full; once only half the reserve is left readings are held back (not acknowledged) while an
  acknowledgement and its notice still go through; the journal passes `PRAGMA integrity_check`; once space
  is freed the reserve is made again, the held-back readings arrive (once each) and the alarm resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.ports.errors import ReadingsHeldBack
from daemon.ports.model import Quantity, Reading
from daemon.storage.journal import Journal
from daemon.storage.reserve import MB, Reserve
from tests.drivers.sensors.mqtt.conftest import Broker
from tests.drivers.sensors.mqtt.test_driver import journal_values, mqtt_driver, until
from tests.faults.daemon.test_disk_full import CONFIG as DISK_FULL_CONFIG
from tests.faults.daemon.test_disk_full import Fed, core_tasks_alive
from tests.faults.daemon.test_disk_full import sms as sent

CONFIG = DISK_FULL_CONFIG.replace("reserve_mb: 0", "reserve_mb: 2")


class SmallDisk:
    """An 8 MB tmpfs; `fill(leave)` lets a filler file take all but `leave` bytes, `free()` deletes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def df_free(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> None:
        self.filler.unlink(missing_ok=True)
        with self.filler.open("wb") as f:
            os.posix_fallocate(f.fileno(), 0, max(self.df_free() - leave, 1))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    root = tmp_path / "small"
    root.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting the small tmpfs needs root (CI runs as root)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(root)], check=True)
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)


def held_with_real_blocks(r: Reserve) -> bool:
    st = r.path.stat() if r.path.exists() else None
    return r.state == "held" and st is not None and st.st_size == 2 * MB and st.st_blocks * 512 >= 2 * MB


def integrity(j: Journal) -> str:
    return str(j.read("PRAGMA integrity_check")[0][0])


def test_a_write_refused_by_the_full_disk_is_retried_in_the_reserve(disk: SmallDisk) -> None:
    j = Journal(disk.root / "journal.db")
    r = Reserve(j.path, 2)
    r.attach(j)
    try:
        r.check()
        assert held_with_real_blocks(r)
        disk.fill(0)
        def batch(k: int) -> list[Reading]:  # new times each round: an exact repeat of a device reading is stored once
            return [Reading("s", "z1", "m1", Quantity.TEMPERATURE, 5.0 + i / 1000, 1e9 + k * 2000 + i)
                    for i in range(2000)]

        stored = 0
        with pytest.raises(ReadingsHeldBack):  # the reserve's second half is not for readings  # noqa: PT012 - the refusal comes after some appends: the loop is the act
            for k in range(100):
                stored += len(r.retrying(j.readings.append, batch(k)))  # the first refusal releases it; the retry fits
        assert r.state == "released" and r.releases == 1 and not r.path.exists()
        assert stored > 0 and j.readings.count() == stored
        assert disk.df_free() >= MB - 250_000  # half the reserve is left for alarms, less the last batch's pages
        assert integrity(j) == "ok"
        disk.free()
        r.check()
        assert held_with_real_blocks(r)
    finally:
        j.close()


@pytest.mark.peer
@pytest.mark.asyncio
async def test_alarms_and_sms_work_on_a_full_disk(broker: Broker, disk: SmallDisk) -> None:
    fed = Fed(broker, disk.root, CONFIG, "reserve")
    d, cfg, publish, published = fed.d, fed.cfg, fed.publish, fed.published
    await d.start()
    try:
        await until(lambda: mqtt_driver(d).connected, "the MQTT connection")
        await until(lambda: held_with_real_blocks(d.reserve), "the 2 MB reserve made at start")
        await publish(5.0)
        await until(lambda: journal_values(d, "m1") == [5.0], "the first reading journaled")

        # the disk fills up: the reserve is given back, the disk alarm and a temperature alarm are stored and sent
        disk.fill(0)
        await until(lambda: d.reserve.state == "released", "the reserve released on the full disk")
        await until(lambda: [a for a in d.journal.alerts.find() if a.kind == "box_health" and a.state == "firing"],
                    "the box-health disk alarm")
        await until(lambda: any("存储空间不足" in t for t in sent(d)), "the disk alarm's SMS sent")
        await publish(9.5)
        await until(lambda: any("9.5" in t for t in sent(d)), "the temperature alarm's SMS sent on the full disk")
        assert disk.filler.exists() and disk.df_free() < 2 * MB + 512 * 1024, "the disk was not full"

        # half the reserve left: readings wait (not acknowledged), an acknowledgement and its notice go through
        # (a held-back reading still drives the rules: 9.8 keeps the alarm firing, and would have raised it)
        disk.fill(MB // 2)
        await publish(9.8)
        await until(lambda: d.stats.get("readings_held_back") > 0, "readings held back")
        assert 9.8 not in journal_values(d, "m1")
        (alarm,) = [a for a in d.journal.alerts.find() if a.kind == "temp_high"]
        assert alarm.state == "firing"
        assert await asyncio.to_thread(d.alerts.acknowledge, alarm.id, "张师傅", "门没关好，已关")
        await until(lambda: any("已确认" in t and "张师傅" in t for t in sent(d)), "the acknowledgement notice sent")
        assert integrity(d.journal) == "ok"

        # space comes back: the reserve is made again, the held-back reading arrives once, alarms resolve
        disk.free()
        await until(lambda: held_with_real_blocks(d.reserve), "the reserve made again", timeout=30)
        await publish(7.0)
        await until(lambda: sorted(v for v in journal_values(d, "m1") if v is not None) == sorted(published),
                    "every published reading journaled once", timeout=60)
        await until(lambda: any(a.kind == "temp_high" and a.state == "resolved" for a in d.journal.alerts.find()),
                    "the temperature alarm resolved")
        await until(lambda: any(a.kind == "box_health" and a.state == "resolved" for a in d.journal.alerts.find()),
                    "the disk alarm resolved")
        assert core_tasks_alive(d)
        print(f"{d.stats.get('readings_held_back')} batches held back, {d.stats.get('journal_write_errors')} journal "
              f"write errors, {d.stats.get('disk_reserve_releases')} release(s), {len(sent(d))} SMS sent")
    finally:
        with contextlib.suppress(Exception):
            disk.free()
        await d.stop()
    j = Journal(cfg.storage.journal)
    try:
        assert integrity(j) == "ok"
    finally:
        j.close()
