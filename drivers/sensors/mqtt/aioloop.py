"""paho-mqtt driven by the asyncio loop (paho's external-loop mode) instead of its own network thread.

paho's thread selects once per packet and is woken through a socketpair for every packet queued from
another thread; each message then crosses to the loop under a lock. Here the loop's selector watches
the socket: a readable socket is read until it is empty (up to DRAIN_MAX packets, then the loop takes
its turn), messages reach the driver's queue in the same thread, and the PUBACKs of a commit are
written by one writer callback. The TCP/TLS connect, which blocks, runs in a worker thread; this
module redoes what `loop_forever` did: reconnect with doubling delays, keepalive (`loop_misc`).

paho reads a packet in three `recv` calls (its type, its length, the rest), each a system call, and the loop
asked `poll()` once per packet whether there was more: a quarter of the paho side of a backlog drain. The socket
paho reads is wrapped (`BufferedSocket`), so a drain reads the kernel's buffer in one `recv` of up to
READ_SIZE bytes and paho's small reads are served from it.

Measured with bench/ingest.py (docs/benchmarks.md, sessions 8 and 11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt import _packet
from paho.mqtt.exception import MQTTException
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

log = logging.getLogger("coldchain.mqtt")
DRAIN_MAX = 1000  # packets read per readiness callback before other tasks run
MISC_EVERY = 1.0  # seconds between keepalive checks (what loop_forever does between selects)
STOP_TIMEOUT = 5.0  # seconds a stop waits for the DISCONNECT (and the acks queued before it) to be written
READ_SIZE = 65536  # bytes taken from the socket per system call while draining


class BufferedSocket:
    """The client's socket (TCP or TLS) with its reads served from a buffer; everything else goes to the socket.

    `recv(n)` returns at most n bytes, as a socket does: from the buffer while it holds any, else from one
    `recv(READ_SIZE)` of the socket, whose exceptions (BlockingIOError, ssl.SSLWantReadError, OSError) and end
    of stream (b"") reach paho unchanged. Bytes in the buffer no longer wake the selector: `buffered()` says
    how many wait there (LoopedClient reads them before it waits again)."""

    __slots__ = ("_buf", "_pos", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = bytes(self.sock.recv(READ_SIZE))  # bytes(b) is b itself; a bytearray (websockets) is copied
            if len(buf) <= n:  # also b"": the end of the stream
                self._buf, self._pos = b"", 0
                return bytes(buf)
            pos = 0
        end = pos + n
        if end >= len(buf):
            self._buf, self._pos = b"", 0
        else:
            self._buf, self._pos = buf, end
        return buf[pos:end]

    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def pending(self) -> int:
        """Bytes readable without waiting: the buffer's, and a TLS socket's decrypted ones."""
        inner = getattr(self.sock, "pending", None)
        return self.buffered() + (inner() if inner is not None else 0)

    def send(self, data: bytes | bytearray) -> int:
        return int(self.sock.send(data))

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def close(self) -> None:
        self.sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class NoFilterMatcher(MQTTMatcher):
    """paho's table of per-filter message callbacks (`message_callback_add`), quick while it is empty.

    paho matches every message's topic against it (a split and a recursive generator) before it calls
    `on_message`: 4.5 % of the daemon's samples in a backlog drain (py-spy, bench.ingest), for a table the
    driver never fills. Empty, nothing can match; filled, it matches as paho's own."""

    def iter_match(self, topic: str) -> Iterator[Any]:
        if not self._root._children:
            return iter(())
        return super().iter_match(topic)  # type: ignore[no-any-return,no-untyped-call]


_TABLES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
_NAME_OF: dict[int, str] = {ident: name.replace(" ", "") for name, ident in _TABLES.names.items()}
_SUBSCRIPTION_ID, _USER_PROPERTY = 11, 38  # the properties a packet may carry more than once
_PRIVATE = 4  # packetType, types, names, properties: what an instance holds before any property


class SharedTablesProperties(Properties):
    """paho's MQTT 5 `Properties` with its lookup tables (27 names, 27 property types, 7 type names) built once.

    paho 2.2 builds them in every instance, and its decoder makes one per received MQTT 5 PUBLISH (and PUBACK):
    29 % of the daemon's samples in a backlog drain on MQTT 5 (py-spy, bench.ingest; the ingest ratio fell from
    0.99 on 3.1.1 to 0.27-0.35 on 5). Nothing in `Properties` writes to the tables after `__init__`, so every
    instance can read the same ones; values, validation and errors are paho's own."""

    def __init__(self, packetType: int) -> None:
        set_ = object.__setattr__  # Properties.__setattr__ lets these four names through the same way
        set_(self, "packetType", packetType)
        set_(self, "types", _TABLES.types)
        set_(self, "names", _TABLES.names)
        set_(self, "properties", _TABLES.properties)

    def unpack(self, buffer: bytes) -> tuple[Properties, int]:
        """paho's `unpack`, with the subscription identifier (on every PUBLISH the driver subscribed for on MQTT
        5) stored directly after paho's range check, and no `clear()` of a new instance (27 look-ups);
        other properties go through paho's own `setattr` checks."""
        if len(self.__dict__) > _PRIVATE:
            self.clear()  # type: ignore[no-untyped-call]
        propslen, vbilen = VariableByteIntegers.decode(buffer)  # type: ignore[no-untyped-call]
        buffer = buffer[vbilen:]
        left = propslen
        while left > 0:
            ident, n = VariableByteIntegers.decode(buffer)  # type: ignore[no-untyped-call]
            buffer = buffer[n:]
            left -= n
            value, n = self.readProperty(buffer, self.properties[ident][0], left)  # type: ignore[no-untyped-call]
            buffer = buffer[n:]
            left -= n
            name = _NAME_OF[ident]
            if ident == _SUBSCRIPTION_ID and 1 <= value <= 268_435_455:
                self.__dict__[name] = [*self.__dict__.get(name, ()), value]
                continue
            if ident not in (_USER_PROPERTY, _SUBSCRIPTION_ID) and name in self.__dict__:
                raise MQTTException(f"Property '{name}' must not exist more than once")
            setattr(self, name, value)
        return self, propslen + vbilen


def share_property_tables() -> None:
    """Let paho's packet decoder make `SharedTablesProperties` (once per process; paho's own class only)."""
    if _packet.Properties is Properties:  # type: ignore[attr-defined]
        _packet.Properties = SharedTablesProperties  # type: ignore[attr-defined]


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
        share_property_tables()
        filters = client._on_message_filtered
        if type(filters) is MQTTMatcher and not filters._root._children:  # paho's own, still empty
            client._on_message_filtered = NoFilterMatcher()  # type: ignore[no-untyped-call]
        client.on_socket_open = self._socket_open
        client.on_socket_close = lambda _c, _u, _sock: self._here(self._gone)
        client.on_socket_register_write = lambda _c, _u, _sock: self._here(self._want_write)
        client.on_socket_unregister_write = lambda _c, _u, _sock: self._here(self._no_write)

    def _here(self, fn: Callable[..., None], *args: Any) -> None:
        """Socket callbacks come from the loop, or from the worker thread that connects."""
        if threading.get_ident() == self._thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def _socket_open(self, client: paho.Client, _u: Any, sock: Any) -> None:
        """paho has just made the socket (in the connecting thread), before it sends CONNECT and reads anything:
        it reads and writes through a BufferedSocket from here on."""
        if client._sock is sock and not isinstance(sock, BufferedSocket):
            client._sock = BufferedSocket(sock)  # paho types it SocketLike, a Protocol this class meets
        self._here(self._opened, sock)

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
        """Bytes waiting: in the read buffer, TLS records already decrypted, or the socket readable now."""
        sock = self.client.socket()
        if sock is None or self._poll is None:
            return False
        if isinstance(sock, BufferedSocket):
            if sock.buffered():
                return True  # the common case of a drain: no system call
            sock = sock.sock
        pending = getattr(sock, "pending", None)
        if pending is not None and pending() > 0:
            return True
        return bool(self._poll.poll(0))

    def _read(self) -> None:
        client = self.client
        for _ in range(DRAIN_MAX):
            if client.loop_read() != paho.MQTT_ERR_SUCCESS or not self._more():
                return
        # DRAIN_MAX packets and more waiting: other tasks first, then on. Bytes already in the read buffer (or
        # decrypted by TLS) do not make the socket readable again, so the selector alone might not come back.
        self.loop.call_soon(self._read)

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
