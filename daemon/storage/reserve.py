"""The disk reserve: space held beside the journal so that alarms and their SMS can be stored on a full disk.

A file `<journal>.reserve` of `storage.reserve_mb` MB, with its blocks allocated (`posix_fallocate`, not a
sparse file), so nothing else on the box can take that space. While it is held nothing changes. When the
disk is full (a journal write fails with SQLITE_FULL / ENOSPC, or the box-health check finds less than
1 MB free) it is deleted and its space serves the journal:

- alarms, their audit entries, acknowledgements and outbox messages (the box-health "disk full" alarm and
  its SMS among them) may use all of it;
- readings may use its first half: with less than `reserve_mb / 2` MB free they are refused
  (`ReadingsHeldBack`), so not acknowledged to MQTT (the broker keeps them); a polled sensor has a gap.
  Readings drive the temperature alarms, so they are not refused at once: a room that warms while the disk
  is full still raises its alarm for as long as the first half lasts (days at a few sensors a minute).

It is made again once twice its size is free. `reserve_mb: 0` turns it off (and deletes the file).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from daemon.ports.errors import ReadingsHeldBack
from daemon.ports.stats import Stats
from daemon.storage import disk as health
from daemon.storage.db import disk_full

if TYPE_CHECKING:
    from daemon.storage.journal import Journal

log = logging.getLogger("coldchain.reserve")
MB = 1_000_000  # as `health.free_mb` and `storage.min_free_mb` count
RELEASE_BELOW_MB = 1.0
T = TypeVar("T")


class Reserve:
    """Holds, releases and re-creates the reserve file; thread-safe (journal writes run in threads)."""

    def __init__(self, journal_path: Path, size_mb: int, stats: Stats | None = None) -> None:
        self.path = journal_path.with_name(journal_path.name + ".reserve")
        self.size_mb = size_mb
        self.stats = stats or Stats()
        self.releases = 0
        self._lock = threading.Lock()
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._tmp.unlink(missing_ok=True)  # a power cut while it was being made
        self._held = self.size_mb > 0 and self._whole()
        if not self._held:
            self.path.unlink(missing_ok=True)  # turned off, another size, or not whole: its space is free again

    def attach(self, journal: Journal) -> None:
        """Release on the journal's first disk-full error; hold readings back while the reserve is spent."""
        journal.on_full = self.on_full
        journal.readings.gate = self.admit_readings

    @property
    def state(self) -> str:
        """`off`, `held` or `released`."""
        return "off" if self.size_mb == 0 else "held" if self._held else "released"

    def _whole(self) -> bool:
        try:
            st = self.path.stat()
        except OSError:
            return False
        return st.st_size == self.size_mb * MB and st.st_blocks * 512 >= st.st_size

    def _disk_free(self) -> float:
        return health.free_mb(self.path)

    def free_mb(self) -> float:
        """Free space outside the reserve (MB): what `df` shows, less the reserve's size while it is released."""
        free = self._disk_free()
        return max(0.0, free - self.size_mb) if self.state == "released" else free

    def check(self) -> float:
        """Blocking (the box-health check, every minute): release the reserve when the disk is full, make it
        again when space is back. Returns `free_mb()`, for the box-health disk alarm."""
        if self.size_mb == 0:
            return self._disk_free()
        with self._lock:
            free = self._disk_free()
            if self._held and free < RELEASE_BELOW_MB:
                self._release(f"{free:.1f} MB free")
            elif not self._held and free >= 2 * self.size_mb:
                self._make()
            elif not self._held and self.releases == 0 and self.stats.once(("reserve", "no room")):
                log.warning("only %.1f MB free under %s: the %d MB disk reserve is made once %d MB are free",
                            free, self.path.parent, self.size_mb, 2 * self.size_mb)
        return self.free_mb()

    def on_full(self) -> None:
        """A journal write failed on a full disk (called from the writing thread)."""
        with self._lock:
            if self._held:
                self._release("a journal write failed: disk full")

    def admit_readings(self) -> None:
        """Raise `ReadingsHeldBack` while the reserve is released and less than half of it is left."""
        if self._held or self.size_mb == 0:
            return
        free = self._disk_free()
        if free < self.size_mb / 2:
            self.stats.inc("readings_held_back")
            raise ReadingsHeldBack(
                f"disk full: {free:.1f} MB left under {self.path.parent}, kept for alarms and SMS (storage.reserve_mb "
                f"{self.size_mb}); readings are not stored until space is freed")

    def retrying(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, and once more if it failed on a full disk while the reserve gave its space back."""
        before = self.releases
        try:
            return fn(*args)
        except Exception as exc:
            if not disk_full(exc) or self.releases == before:
                raise
        log.warning("retrying the refused journal write in the space of the disk reserve")
        return fn(*args)

    def _release(self, why: str) -> None:
        self.path.unlink(missing_ok=True)
        self._held = False
        self.releases += 1
        self.stats.inc("disk_reserve_releases")
        log.error("%s: released the %d MB disk reserve %s for alarms and SMS; readings are refused while less than "
                  "%.1f MB is free; free space under %s", why, self.size_mb, self.path, self.size_mb / 2,
                  self.path.parent)

    def _make(self) -> None:
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _allocate(fd, self.size_mb * MB)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            if self.stats.once(("reserve", str(exc.errno))):
                log.warning("cannot make the disk reserve %s: %s", self.path, exc.strerror or exc)
            return
        self._held = True
        log.info("disk reserve of %d MB held at %s", self.size_mb, self.path)


def _allocate(fd: int, size: int) -> None:
    """Real blocks for `size` bytes: `posix_fallocate`, or zeros where the filesystem cannot allocate."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    chunk = bytes(MB)
    for _ in range(size // MB):
        os.write(fd, chunk)
    os.write(fd, bytes(size % MB))
