"""paho-mqtt driven by the asyncio loop (paho's external-loop mode) instead of its own network thread.

paho's thread selects once per packet and is woken through a socketpair for every packet queued from
another thread; each message then crosses to the loop under a lock. Here the loop's selector watches
the socket: a readable socket is read until it is empty (up to DRAIN_MAX packets, then the loop takes
its turn), messages reach the driver's queue in the same thread, and the PUBACKs of a commit are
written by one writer callback. The TCP/TLS connect, which blocks, runs in a worker thread; this
module redoes what `loop_forever` did: reconnect with doubling delays, keepalive (`loop_misc`).

Measured with bench/ingest.py (docs/benchmarks.md, session 8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

log = logging.getLogger("coldchain.mqtt")
DRAIN_MAX = 1000  # packets read per readiness callback before other tasks run
MISC_EVERY = 1.0  # seconds between keepalive checks (what loop_forever does between selects)
STOP_TIMEOUT = 5.0  # seconds a stop waits for the DISCONNECT (and the acks queued before it) to be written


class LoopedClient:
    """Runs one paho client in the running loop: `run()` connects and reconnects until cancelled, `stop()`
    sends what is queued (acknowledgements first) and a DISCONNECT, then closes."""

    def __init__(self, client: paho.Client, delays: tuple[float, float], unreachable: Callable[[str], None]) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._min, self._max = delays
        self._unreachable = unreachable
        self._fd: int | None = None
        self._poll: select.poll | None = None
        self._closed = asyncio.Event()
        self._closed.set()
        self._connecting: asyncio.Future[Any] | None = None
        client.on_socket_open = lambda _c, _u, sock: self._here(self._opened, sock)
        client.on_socket_close = lambda _c, _u, _sock: self._here(self._gone)
        client.on_socket_register_write = lambda _c, _u, _sock: self._here(self._want_write)
        client.on_socket_unregister_write = lambda _c, _u, _sock: self._here(self._no_write)

    def _here(self, fn: Callable[..., None], *args: Any) -> None:
        """Socket callbacks come from the loop, or from the worker thread that connects."""
        if threading.get_ident() == self._thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    # ------------------------------------------------------------------ socket events (loop thread)

    def _opened(self, sock: Any) -> None:
        fd = sock.fileno()
        if fd < 0:
            return  # closed again before the loop got to it
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._closed.clear()
        self.loop.add_reader(fd, self._read)

    def _gone(self) -> None:
        fd, self._fd, self._poll = self._fd, None, None
        if fd is not None:
            self.loop.remove_reader(fd)
            self.loop.remove_writer(fd)
        self._closed.set()

    def _want_write(self) -> None:
        if self._fd is not None:
            self.loop.add_writer(self._fd, self._write)

    def _no_write(self) -> None:
        if self._fd is not None:
            self.loop.remove_writer(self._fd)

    def _more(self) -> bool:
        """Bytes waiting: TLS records already decrypted, or the socket readable now."""
        sock = self.client.socket()
        if sock is None or self._poll is None:
            return False
        pending = getattr(sock, "pending", None)
        if pending is not None and pending() > 0:
            return True
        return bool(self._poll.poll(0))

    def _read(self) -> None:
        client = self.client
        for _ in range(DRAIN_MAX):
            if client.loop_read() != paho.MQTT_ERR_SUCCESS or not self._more():
                return

    def _write(self) -> None:
        self.client.loop_write()

    # ------------------------------------------------------------------ connection (a task)

    async def run(self) -> None:
        """Connect; while connected, check keepalive every MISC_EVERY; when lost, wait and connect again
        (delays doubling from reconnect_min to reconnect_max, back to the first after a CONNACK)."""
        delay = self._min
        while True:
            if await self._connect() and await self._serve():
                delay = self._min
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max)

    async def _connect(self) -> bool:
        self._connecting = asyncio.ensure_future(asyncio.to_thread(self.client.reconnect))
        try:
            await asyncio.shield(self._connecting)  # a cancel leaves it to stop() to wait for
        except Exception:  # noqa: BLE001 - refused, timed out, TLS, DNS (OSError), a bad host (ValueError): retry
            self._unreachable("connection refused or timed out")
            return False
        return True

    async def _serve(self) -> bool:
        """Until the connection is gone; True if the broker accepted it (a CONNACK came)."""
        client, accepted = self.client, False
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout=MISC_EVERY)
            accepted = accepted or client.is_connected()
            client.loop_misc()
        return accepted

    async def stop(self) -> None:
        """Write what is queued and a DISCONNECT, wait until the socket is closed, then stop."""
        if self._connecting is not None and not self._connecting.done():  # let a connect in its thread end
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._connecting), timeout=STOP_TIMEOUT)
        with contextlib.suppress(Exception):
            self.client.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=STOP_TIMEOUT)
        if not self._closed.is_set():
            log.warning("mqtt: the broker connection did not close in %.0f s; closing it", STOP_TIMEOUT)
            sock = self.client.socket()
            self._gone()
            if sock is not None:
                sock.close()
