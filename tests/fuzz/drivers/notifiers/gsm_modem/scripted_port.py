"""The real AT layer and notifier over a scripted byte stream instead of a serial port, in the calling thread.

`ScriptedSerial` stands in for `serial.Serial` under `AtPort`: reads hand out the scripted chunks (split
wherever the test chose, as a UART does); once they run out the line is idle and the AT layer's clock moves
on by the read timeout, so a command without a final result code times out at once in real time.
`ScriptedPort` is what the notifier holds as its `_port`: each `submit()` appends that command's scripted
answer and runs the real `AtPort._execute` on it, thousands of times cheaper than a pty round trip.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import serial

from drivers.notifiers.gsm_modem import at
from drivers.notifiers.gsm_modem.at import AtPort, AtPortError, Response, Urc, _Request

PORT = "/dev/ttyFUZZ"


class ScriptedSerial:
    """Bytes the modem "sends", in chunks; `written` keeps what the AT layer wrote; `now` is the line's clock."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.written: list[bytes] = []
        self.timeout: float | None = 0.05
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    @property
    def in_waiting(self) -> int:
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, size: int = 1) -> bytes:
        if not self.chunks:
            self.now += max(self.timeout or 0.0, 0.001)  # nothing arrived for a whole read timeout
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > size:
            chunk, rest = chunk[:size], chunk[size:]
            self.chunks.insert(0, rest)
        return chunk

    def write(self, data: bytes) -> int:
        self.written.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class ScriptedPort:
    """Answers each command with `answer(command)` (a list of chunks) through the real AT layer.

    Use it inside `with port.virtual_time():` so the AT layer's deadlines follow the scripted line.
    """

    def __init__(self, answer: Callable[[str], list[bytes]], on_urc: Callable[[Urc], None]) -> None:
        self.answer = answer
        self.serial = ScriptedSerial()
        self.at = AtPort(PORT, on_urc=on_urc)
        self.at._serial = self.serial  # type: ignore[assignment]
        self.commands: list[str] = []

    @contextlib.contextmanager
    def virtual_time(self) -> Iterator[None]:
        real = at.time
        at.time = types.SimpleNamespace(monotonic=self.serial.monotonic)  # type: ignore[assignment]
        try:
            yield
        finally:
            at.time = real

    @property
    def alive(self) -> bool:
        return True

    def submit(self, command: str, timeout: float, *, pdu: str | None = None,
               prompt_timeout: float = 5.0) -> Future[Response]:
        self.commands.append(command)
        self.serial.chunks += self.answer(command)
        req = _Request(command, timeout, pdu, prompt_timeout)
        try:
            self.at._execute(req)
        except (serial.SerialException, OSError) as exc:  # as AtPort._main does for a port lost mid-command
            req.future.set_exception(AtPortError(f"{PORT}: port lost: {exc}", submitted=req.submitted))
        return req.future

    def idle(self, chunks: list[bytes]) -> None:
        """Bytes arriving between commands: routed as unsolicited, as the AT thread does when idle."""
        self.serial.chunks += chunks
        while self.serial.chunks:
            self.at._idle()
        self.at._idle()  # a line still without its end stays in the buffer, as on a real port

    def pdu_written(self, pdu: str) -> bool:
        """Whether the AT layer wrote this PDU (after a `> ` prompt)."""
        return any(w.startswith(pdu.encode("ascii")) for w in self.serial.written)

    def close(self) -> None:
        pass
