"""A broker that keeps strictly to an in-flight window, played by a loopback proxy in front of a real mosquitto.

Mosquitto 2.0.11 holds to `max_inflight_messages` only until its first stall (test_broker_window.py); EMQX, by its
documentation, keeps to the smaller of the client's Receive Maximum and its `mqtt.max_inflight` (32) for good,
and there is no EMQX package in Debian. The proxy passes every packet through unchanged, except that it holds
broker-to-client QoS 1 PUBLISH packets while `window` of them await the client's PUBACK, and sends the held ones
in order as PUBACKs come: what such a broker does, with mosquitto doing everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

PUBLISH, PUBACK = 3, 4


async def _packet(reader: asyncio.StreamReader) -> bytes:
    """One MQTT control packet, header and all (MQTT 3.1.1 / 5 section 2.2: a variable byte integer length)."""
    head = await reader.readexactly(1)
    length, shift, raw = 0, 0, b""
    while True:
        b = await reader.readexactly(1)
        raw += b
        length |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            break
    return head + raw + await reader.readexactly(length)


class StrictWindow:
    """`async with StrictWindow(broker_port, window) as proxy:` clients connect to `proxy.port`."""

    def __init__(self, broker_port: int, window: int) -> None:
        self.broker_port, self.window = broker_port, window
        self.port = 0
        self.most_in_flight = 0  # the most QoS 1 messages a client had unacknowledged
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> StrictWindow:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._server.wait_closed()

    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        b_reader, b_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        held: deque[bytes] = deque()
        in_flight = [0]

        def send(pkt: bytes) -> None:
            in_flight[0] += 1
            self.most_in_flight = max(self.most_in_flight, in_flight[0])
            c_writer.write(pkt)

        async def up() -> None:  # client -> broker
            while True:
                pkt = await _packet(c_reader)
                b_writer.write(pkt)
                await b_writer.drain()
                if pkt[0] >> 4 == PUBACK and in_flight[0]:
                    in_flight[0] -= 1
                    while held and in_flight[0] < self.window:
                        send(held.popleft())
                await c_writer.drain()

        async def down() -> None:  # broker -> client
            while True:
                pkt = await _packet(b_reader)
                if pkt[0] >> 4 == PUBLISH and (pkt[0] >> 1) & 3 == 1:
                    if in_flight[0] < self.window and not held:
                        send(pkt)
                    else:
                        held.append(pkt)
                else:
                    c_writer.write(pkt)
                await c_writer.drain()

        tasks = {asyncio.create_task(up()), asyncio.create_task(down())}
        self._tasks |= tasks
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            self._tasks -= tasks
            for w in (c_writer, b_writer):
                w.close()
