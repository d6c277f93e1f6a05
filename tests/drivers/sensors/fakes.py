"""A serial port that replays recorded frames, and a DriverContext that records what a driver does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from daemon.ports.clock import ManualClock
from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext, Receipt


def frame(hexbytes: str) -> bytes:
    """b'\\x01\\x04...' from '01 04 ...' as written in PROTOCOLS.md."""
    return bytes.fromhex(hexbytes)


class FakeSerial:
    """Answers each request frame with a reply captured from a real transmitter.

    An unknown request gets silence, like a dead device on a real bus; `unplugged`
    makes every call fail the way pyserial does when the USB adapter is pulled.
    """

    def __init__(self, replies: dict[bytes, bytes] | None = None, port: str = "/dev/ttyFAKE") -> None:
        self.replies = dict(replies or {})
        self.port = port
        self.baudrate = 9600
        self.timeout: float | None = 1.0
        self.is_open = True
        self.unplugged = False
        self.written: list[bytes] = []
        self._pending = b""

    def _check(self) -> None:
        if self.unplugged:
            import serial

            raise serial.SerialException("read failed: [Errno 5] Input/output error")

    def write(self, data: bytes) -> int:
        self._check()
        self.written.append(bytes(data))
        self._pending = self.replies.get(bytes(data), b"")
        return len(data)

    def read(self, size: int = 1) -> bytes:
        self._check()
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def reset_input_buffer(self) -> None:
        self._check()
        self._pending = b""

    def reset_output_buffer(self) -> None:
        self._check()

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False


@dataclass
class Recorder:
    """What a driver emitted and which online states it set."""

    batches: list[list[Sample]] = field(default_factory=list)
    online: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def samples(self, sensor: str) -> list[Sample]:
        return [s for b in self.batches for s in b if s.sensor == sensor]


def context(rec: Recorder, name: str = "test.serial") -> DriverContext:
    async def emit(samples: Sequence[Sample]) -> None:
        rec.batches.append(list(samples))

    def submit(samples: Sequence[Sample], _receipt: Receipt | None = None, /) -> asyncio.Future[None]:
        rec.batches.append(list(samples))  # recorded at hand-over, as the pipeline accepts them
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def set_online(sensor: str, online: bool, why: str) -> None:
        rec.online[sensor] = (online, why)

    return DriverContext(
        clock=ManualClock(),
        emit=emit,
        set_online=set_online,
        log=logging.getLogger(name),
        settings=cast(Any, None),
        submit=submit,
    )
