"""A socat pty pair with the fake modem on one end; the notifier opens the other."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.notifiers.gsm_modem.fake_modem import FakeModem


@dataclass
class PtyPair:
    """`modem_end` is the device side, `client_end` what the notifier opens as its port."""

    modem_end: Path
    client_end: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start socat and wait (bounded) until both links exist."""
        socat = shutil.which("socat")
        assert socat, "socat is required (Debian package socat; `make test` installs it)"
        self.proc = subprocess.Popen([socat, f"PTY,link={self.modem_end},raw,echo=0",
                                      f"PTY,link={self.client_end},raw,echo=0"], stderr=subprocess.DEVNULL)
        wait_until(lambda: self.modem_end.exists() and self.client_end.exists(), what="socat pty links")

    def stop(self) -> None:
        """Kill socat: both ptys vanish, as when a USB modem is unplugged."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None
        wait_until(lambda: not self.client_end.exists(), what="socat links removed")


def wait_until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `pred` until true; fail after `timeout` (a bound, not an assertion about speed)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def ptys(tmp_path: Path) -> Iterator[PtyPair]:
    pair = PtyPair(tmp_path / "ttyMODEM", tmp_path / "ttyCLIENT")
    pair.start()
    yield pair
    if pair.proc is not None:
        pair.stop()


@pytest.fixture
def modem(ptys: PtyPair) -> Iterator[FakeModem]:
    fake = FakeModem(str(ptys.modem_end)).start()
    yield fake
    fake.stop()
