"""pymodbus TCP servers as gateways: started, paused (SIGSTOP: connected but silent), stopped, restarted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.drivers.sensors.conftest import DEADLINE

PEER = Path(__file__).with_name("peer_server.py")
ROOT = Path(__file__).parents[4]
# unit 1: 30.5 C 54.6 %; unit 2: -20.5 C; unit 3 holds one register only (reading 0x0001+2 is exception 0x02)
DEVICES = {"1": {"ir": [0, 305, 546]}, "2": {"ir": [0, 0xFF33, 546]}, "3": {"ir": [0]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Gateway:
    """pymodbus's TCP server in `framing` on a fixed local port."""

    def __init__(self, framing: str, spec: dict[str, Any] = DEVICES) -> None:
        self.framing, self.spec, self.port = framing, spec, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, str(PEER), str(self.port), self.framing, json.dumps(self.spec)],
                                     env=env)
        end = time.monotonic() + DEADLINE
        while True:
            assert self.proc.poll() is None, "pymodbus server exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                assert time.monotonic() < end, "pymodbus server did not listen"
                time.sleep(0.05)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc = None


@pytest.fixture
def gateways() -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(framing: str = "tcp", spec: dict[str, Any] = DEVICES) -> Gateway:
        gw = Gateway(framing, spec).start()
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()
