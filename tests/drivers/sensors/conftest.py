"""Virtual serial cables for the serial drivers' real-peer tests: `socat` pty pairs.

`socat PTY,link=A,raw,echo=0 PTY,link=B,raw,echo=0` joins two pseudo-terminals; the device
side program opens A, the driver opens B with pyserial. Stopping socat closes both ends
and removes the links, which is what the driver sees when a USB adapter is pulled.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from daemon.ports.sources import SensorDriver
from tests.peers import until  # noqa: F401 - the sensor tests import it from here

DEADLINE = 10.0


def wait_for(cond: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll `cond` until true; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(0.02)


@contextlib.asynccontextmanager
async def running(driver: SensorDriver) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(driver.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await driver.close()


class PtyPair:
    """Two linked ptys: `device` for the peer program, `client` for the driver."""

    def __init__(self, folder: Path, name: str) -> None:
        self.device = folder / f"tty{name}-dev"
        self.client = folder / f"tty{name}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PtyPair:
        socat = shutil.which("socat")
        assert socat, "socat is missing: `make system-deps` installs it"
        self.proc = subprocess.Popen(
            [socat, f"PTY,link={self.device},raw,echo=0", f"PTY,link={self.client},raw,echo=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.device.exists() and self.client.exists(), f"socat links {self.client}")
        return self

    def stop(self) -> None:
        """Like pulling the adapter: both ends close and the device nodes disappear."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc = None
        wait_for(lambda: not self.client.is_symlink() and not self.device.is_symlink(), "socat links gone")


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[Callable[[str], PtyPair]]:
    """Factory of started pty pairs, all stopped at teardown."""
    pairs: list[PtyPair] = []

    def make(name: str) -> PtyPair:
        pair = PtyPair(tmp_path, name).start()
        pairs.append(pair)
        return pair

    yield make
    for p in pairs:
        if p.proc is not None:
            p.stop()
