"""A serial port that survives its USB adapter being unplugged, for the serial sensor drivers.

Both `modbus_rtu` and `serial_line` talk through one `SerialLink` per port: all blocking
I/O runs on the link's own thread (never on the event loop, never in the shared default
executor the journal uses), the port is opened lazily, and an unplug (EIO, ENXIO, the
device node gone) closes it and raises `PortDown` until a reopen with backoff succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import termios
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol, TypeVar

import serial
from pydantic import BaseModel, ConfigDict, Field

from daemon.ports.retry import Backoff

T = TypeVar("T")

PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)
"""What pyserial raises when the adapter vanishes (tcflush on a dead pty raises termios.error)."""

BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
"""Reopen delays (s): doubling from BACKOFF_MIN, so a replugged adapter is back within 30 s."""


class PortSettings(BaseModel):
    """Line settings that every sensor on one port must agree on."""

    model_config = ConfigDict(extra="forbid")

    port: str = Field(default="/dev/ttyUSB0", min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    baudrate: Literal[1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200] = Field(
        default=9600, description="bits per second"
    )
    bytesize: Literal[7, 8] = Field(default=8, description="data bits")
    parity: Literal["N", "E", "O"] = Field(default="N", description="N(one), E(ven) or O(dd)")
    stopbits: Literal[1, 2] = Field(default=1, description="stop bits")


BUS_KEYS = ("baudrate", "bytesize", "parity", "stopbits")


def bus_conflicts(kind: str, sensors: list[Any]) -> list[str]:
    """Problems when sensors sharing one port disagree on its line settings (named by sensor id)."""
    problems = []
    by_port: dict[str, list[Any]] = {}
    for s in sensors:
        by_port.setdefault(s.port, []).append(s)
    for port, group in by_port.items():
        for key in BUS_KEYS:
            values: dict[Any, list[str]] = {}
            for s in group:
                values.setdefault(getattr(s, key), []).append(s.id)
            if len(values) > 1:
                parts = "; ".join(f"{v} for {', '.join(ids)}" for v, ids in values.items())
                problems.append(f"{kind} sensors on {port} disagree on {key} ({parts}); one bus has one {key}")
    return problems


def group_by_port(sensors: list[Any]) -> list[list[Any]]:
    """Sensors grouped by port, in config order: one bus, one driver instance."""
    groups: dict[str, list[Any]] = {}
    for s in sensors:
        groups.setdefault(s.port, []).append(s)
    return list(groups.values())


class SerialLike(Protocol):
    """The part of `serial.Serial` the drivers use (a test fake implements just this)."""

    timeout: float | None
    is_open: bool

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


Opener = Callable[[PortSettings], SerialLike]


def open_serial(settings: PortSettings) -> SerialLike:
    """Open the real port with pyserial (exclusive, so a second daemon cannot interleave frames)."""
    return serial.Serial(
        port=settings.port,
        baudrate=settings.baudrate,
        bytesize=settings.bytesize,
        parity=settings.parity,
        stopbits=settings.stopbits,
        timeout=1.0,
        write_timeout=2.0,
        exclusive=True,
    )


def os_reason(exc: BaseException) -> str:
    """The OS's short word for a port failure ("No such file or directory"), not pyserial's long text.

    The reason ends up in fault notes and SMS texts, which must stay short.
    """
    code = getattr(exc, "errno", None)
    if code is None and len(exc.args) == 2 and isinstance(exc.args[0], int):  # termios.error(5, "...")
        code = exc.args[0]
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(exc) or type(exc).__name__


class PortDown(Exception):
    """The port is not open (unplugged, or never there); `reason` says what the OS said."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SerialLink:
    """One port, one I/O thread, lazy open, reopen with backoff after the adapter disappears.

    `on_change(up, reason)` is called on the event loop when the port goes down or comes
    back, so the driver can mark its sensors offline/online and log once per transition.
    """

    def __init__(
        self,
        settings: PortSettings,
        log: logging.Logger,
        on_change: Callable[[bool, str], None] | None = None,
        opener: Opener = open_serial,
    ) -> None:
        self.settings = settings
        self.log = log
        self.on_change = on_change
        self.opener = opener
        self._executor: ThreadPoolExecutor | None = None
        self.serial: SerialLike | None = None
        self.state: Literal["closed", "open", "down"] = "closed"
        self.error = ""
        self.backoff = Backoff(BACKOFF_MIN, BACKOFF_MAX)
        self._retry_at = 0.0

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The port's own I/O thread, (re)made on demand so a restarted driver gets a fresh one."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"serial:{self.settings.port}")
        return self._executor

    # -- thread side

    def _open(self) -> SerialLike:
        if self.serial is not None:
            return self.serial
        if time.monotonic() < self._retry_at:
            raise PortDown(self.error)
        try:
            self.serial = self.opener(self.settings)
        except PORT_ERRORS as exc:
            self._retry_at = time.monotonic() + self.backoff.next()
            raise PortDown(f"cannot open: {os_reason(exc)}") from exc
        self.backoff.reset()
        return self.serial

    def _call(self, fn: Callable[[SerialLike], T]) -> T:
        port = self._open()
        try:
            return fn(port)
        except PORT_ERRORS as exc:
            self._close()
            raise PortDown(f"lost: {os_reason(exc)}") from exc

    def _close(self) -> None:
        port, self.serial = self.serial, None
        if port is not None:
            try:
                port.close()
            except PORT_ERRORS as exc:
                self.log.debug("closing %s: %s", self.settings.port, exc)

    # -- loop side

    async def run(self, fn: Callable[[SerialLike], T]) -> T:
        """Run `fn(port)` on the link's thread; raises PortDown while the port is away."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.executor, self._call, fn)
        except PortDown as exc:
            self._set("down", exc.reason)
            raise
        self._set("open", "")
        return result

    def _set(self, state: Literal["open", "down"], reason: str) -> None:
        was = self.state
        self.state, self.error = state, reason
        if state == "down" and was != "down":
            self.log.warning("serial port %s is down: %s; retrying with backoff", self.settings.port, reason)
        elif state == "open" and was == "down":
            self.log.info("serial port %s is back", self.settings.port)
        if self.on_change is not None and (state == "down") != (was == "down"):
            self.on_change(state == "open", reason)

    async def reopen(self) -> None:
        """Wait out the backoff and try to open again; raises PortDown if still away."""
        delay = max(0.0, self._retry_at - time.monotonic())
        await asyncio.sleep(delay)
        await self.run(lambda _port: None)

    async def close(self) -> None:
        """Close the port on its own thread (after any transaction in flight) and stop the thread."""
        if self._executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)
        self._executor = None
        self.state = "closed"
