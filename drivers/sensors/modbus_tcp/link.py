"""One TCP connection to a gateway: opened lazily, one request at a time, reopened with backoff when lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Literal

from daemon.ports.retry import Backoff
from drivers.sensors.modbus_tcp import frames

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP connect: a 4G DTU's link is slow, but a dead gateway must not hold a poll long."""

BACKOFF_MIN, BACKOFF_MAX = 1.0, 60.0
"""Reconnect delays (s): doubling from 1 s to 60 s, so a gateway back on the network is polled within a minute."""


class GatewayDown(Exception):
    """No connection to the gateway (refused, unreachable, lost); `reason` is short, for fault notes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no connection in {CONNECT_TIMEOUT:g} s"
    code = getattr(exc, "errno", None)
    return os.strerror(code) if isinstance(code, int) and code > 0 else (str(exc) or type(exc).__name__)


class GatewayLink:
    """The connection to `host:port`; `read()` asks one unit and returns its registers."""

    def __init__(self, host: str, port: int, framing: frames.Framing, log: logging.Logger) -> None:
        self.host, self.port, self.framing, self.log = host, port, framing, log
        self.state: Literal["closed", "open", "down"] = "closed"
        self.error = ""
        self.backoff = Backoff(BACKOFF_MIN, BACKOFF_MAX)
        self.retry_at = 0.0
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()
        self._tid = 0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The open connection, or a new one; raises GatewayDown (at once while the backoff runs)."""
        if self._streams is not None:
            return self._streams
        if time.monotonic() < self.retry_at:
            raise GatewayDown(self.error)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            self.retry_at = time.monotonic() + self.backoff.next()
            self._down(f"cannot connect: {_reason(exc)}")
            raise GatewayDown(self.error) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:  # a half-open 4G link is noticed by the kernel too, not only by our timeouts
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.backoff.reset()
        if self.state == "down":
            self.log.info("gateway %s:%s is back", self.host, self.port)
        self.state, self.error = "open", ""
        self._streams = (reader, writer)
        return self._streams

    def _down(self, reason: str) -> None:
        if self.state != "down":
            self.log.warning("gateway %s:%s is down: %s; retrying with backoff", self.host, self.port, reason)
        self.state, self.error = "down", reason

    async def read(self, unit: int, fc: int, start: int, count: int, timeout: float) -> list[int]:
        """Registers from one unit; raises GatewayDown, TimeoutError, frames.ExceptionReply or frames.BadFrame."""
        async with self._lock:
            reader, writer = await self.connect()
            self._tid = (self._tid + 1) & 0xFFFF
            try:
                if self.framing == "rtu":
                    await _drain(reader)  # a late reply to an earlier request must not pass for this one
                writer.write(frames.request(self.framing, self._tid, unit, fc, start, count))
                await writer.drain()
                async with asyncio.timeout(timeout):
                    return await frames.reply(reader, self.framing, self._tid, unit, fc, count)
            except TimeoutError:
                raise  # the unit is silent; the connection stays (TimeoutError is an OSError: caught first)
            except frames.BadFrame:
                await self.drop("out of step")
                raise
            except (OSError, asyncio.IncompleteReadError) as exc:
                await self.drop("lost")
                self._down(f"connection lost: {_reason(exc) if isinstance(exc, OSError) else 'closed by gateway'}")
                raise GatewayDown(self.error) from exc

    async def drop(self, why: str) -> None:
        """Close the connection; the next read reconnects."""
        streams, self._streams = self._streams, None
        if streams is not None:
            self.log.debug("gateway %s:%s: closing (%s)", self.host, self.port, why)
            streams[1].close()
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await streams[1].wait_closed()
        if self.state == "open":
            self.state = "closed"

    async def close(self) -> None:
        await self.drop("shutdown")
        self.state = "closed"


async def _drain(reader: asyncio.StreamReader) -> None:
    """Discard bytes already received (RTU frames carry no transaction id)."""
    with contextlib.suppress(TimeoutError):
        while await asyncio.wait_for(reader.read(4096), 0.005):
            pass
