"""The disk reserve's rules, with the free space told by the test (the real full disk: tests/faults/daemon/
test_disk_reserve.py): when it is released and made again, what readings may use, the watchdog."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.errors import ReadingsHeldBack
from daemon.ports.stats import Stats
from daemon.storage import disk as health
from daemon.storage.db import disk_full
from daemon.storage.journal import Journal
from daemon.storage.reserve import MB, Reserve
from tests.conftest import make_config


class FreeSpace:
    """`health.free_mb` as the test says: `mb` MB without the reserve file, less the file while it exists."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, mb: float, reserve: Path) -> None:
        self.mb = mb
        monkeypatch.setattr(health, "free_mb", lambda _path: self.mb - (
            reserve.stat().st_size / MB if reserve.exists() else 0))


def test_made_with_real_blocks_and_released_when_the_disk_is_full(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    free = FreeSpace(monkeypatch, 100, tmp_path / "journal.db.reserve")
    stats = Stats()
    r = Reserve(tmp_path / "journal.db", 3, stats)
    assert r.state == "released"  # not made yet
    assert r.check() == 97
    st = r.path.stat()
    assert r.state == "held" and st.st_size == 3 * MB and st.st_blocks * 512 >= 3 * MB  # not a sparse file
    free.mb = 3.5  # 0.5 MB left beside it
    assert r.check() == 0.5, "the box-health alarm sees the space outside the reserve"
    assert r.state == "released" and not r.path.exists() and stats.get("disk_reserve_releases") == 1
    assert health.free_mb(r.path) == 3.5
    free.mb = 5.9
    r.check()
    assert r.state == "released", "made again with less than its size to spare"
    free.mb = 6
    assert r.check() == 3
    assert r.state == "held" and r.path.stat().st_size == 3 * MB


def test_readings_may_use_half_of_a_released_reserve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = FreeSpace(monkeypatch, 100, tmp_path / "journal.db.reserve")
    stats = Stats()
    r = Reserve(tmp_path / "journal.db", 4, stats)
    r.check()
    free.mb = 4
    r.admit_readings()  # held: the journal's own error decides
    r.on_full()
    assert r.state == "released" and r.releases == 1
    r.admit_readings()  # 4 MB free: readings may use the first half
    free.mb = 1.9
    with pytest.raises(ReadingsHeldBack, match=r"1\.9 MB left .*storage\.reserve_mb 4"):
        r.admit_readings()
    assert stats.get("readings_held_back") == 1


def test_off_deletes_the_file_and_never_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = FreeSpace(monkeypatch, 100, tmp_path / "journal.db.reserve")
    Reserve(tmp_path / "journal.db", 2).check()
    r = Reserve(tmp_path / "journal.db", 0)
    assert r.state == "off" and not r.path.exists()
    free.mb = 0
    r.on_full()
    r.admit_readings()
    assert r.check() == 0 and not r.path.exists()


def test_a_reserve_of_another_size_or_half_made_is_made_again(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    FreeSpace(monkeypatch, 100, tmp_path / "journal.db.reserve")
    Reserve(tmp_path / "journal.db", 2).check()
    (tmp_path / "journal.db.reserve.tmp").write_bytes(b"x")  # a power cut while it was made
    r = Reserve(tmp_path / "journal.db", 3)
    assert r.state == "released" and not r.path.exists() and not (tmp_path / "journal.db.reserve.tmp").exists()
    r.check()
    assert r.state == "held" and r.path.stat().st_size == 3 * MB
    assert Reserve(tmp_path / "journal.db", 3).state == "held"  # a restart keeps it


def test_the_journal_releases_it_on_disk_full_and_the_write_is_retried(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    FreeSpace(monkeypatch, 100, tmp_path / "journal.db.reserve")
    j = Journal(tmp_path / "journal.db")
    r = Reserve(j.path, 2)
    r.attach(j)
    r.check()
    calls = []

    def write() -> str:
        calls.append(1)
        with j.transaction() as db:
            if len(calls) == 1:
                raise sqlite3.OperationalError("database or disk is full")
            db.execute("INSERT INTO mutes (zone, start, end, reason, who, created) VALUES ('z1', 0, 1, 'r', 'w', 0)")
        return "stored"

    try:
        assert r.retrying(write) == "stored" and len(calls) == 2 and r.state == "released"
        with pytest.raises(sqlite3.OperationalError):  # released already: no second chance
            r.retrying(lambda: (_ for _ in ()).throw(sqlite3.OperationalError("database or disk is full")))
        with pytest.raises(ValueError, match="not the disk"):
            r.retrying(lambda: (_ for _ in ()).throw(ValueError("not the disk")))
    finally:
        j.close()


def test_disk_full_errors() -> None:
    assert disk_full(sqlite3.OperationalError("database or disk is full"))
    assert disk_full(OSError(28, "No space left on device"))
    assert not disk_full(sqlite3.OperationalError("database is locked"))
    assert not disk_full(OSError(5, "Input/output error"))


@pytest.mark.asyncio
async def test_readings_held_back_do_not_stop_the_watchdog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart would not free the disk and would pause the SMS; a journal that fails otherwise still stops it."""
    pets: list[str] = []
    monkeypatch.setattr("daemon.app.runtime.notify", lambda state: pets.append(state) or True)
    d = Daemon(make_config(tmp_path))
    task = asyncio.create_task(d._watchdog(0.02))

    async def failing(held_back: bool) -> None:
        for _ in range(10):
            d.stats.inc("journal_write_errors")
            if held_back:
                d.stats.inc("readings_held_back")
            await asyncio.sleep(0.005)

    async def until_petted(held_back: bool | None) -> bool:
        """A loaded CI machine may stall the loop past a period: wait for the pet, up to 5 s, instead of 50 ms."""
        for _ in range(100):
            await (failing(held_back) if held_back is not None else asyncio.sleep(0.05))
            if pets:
                return True
        return False

    try:
        assert await until_petted(None)
        pets.clear()
        assert await until_petted(held_back=True), "held-back readings stopped the watchdog"
        await failing(held_back=False)  # the first period may still see the held-back ones
        pets.clear()
        await failing(held_back=False)
        assert not pets, "failing journal writes must stop the watchdog"
    finally:
        task.cancel()
        d.journal.close()
