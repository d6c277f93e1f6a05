"""The API's HTTP/1.1 server: h11 parses and frames the bytes, this module runs the ASGI app in the daemon's loop.

DESIGN.md named uvicorn. Importing it cost the box 2.9 MB of RSS against a 60 MB target (docs/benchmarks.md,
"Memory in session 14"): its package imports click, multiprocessing, pickle, logging.config and configparser
for a command line, worker processes and log files the daemon does not use. h11 is the parser uvicorn itself
runs without httptools; what is here is the ASGI glue uvicorn's h11 protocol has, cut to what a box serves:
one request at a time per connection, keep-alive, HEAD, `Expect: 100-continue`, time limits on idle and slow
clients, a stop that lets requests in progress finish, and uvicorn's default trust of `X-Forwarded-Proto` and
`X-Forwarded-For` from a reverse proxy on the box itself (127.0.0.1; docs/sign-in.md, HTTPS). No TLS, no HTTP/2,
no websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

import h11

log = logging.getLogger("coldchain.api.server")

Message = MutableMapping[str, Any]
App = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
               Awaitable[None]]

KEEP_ALIVE_S = 5.0
"""An idle kept-alive connection is closed after this (uvicorn's default)."""
HEAD_S = 10.0
"""A request's line and headers must be in within this: a client that trickles them cannot hold a connection."""
BODY_S = 60.0
"""The longest wait for the next piece of a request body."""
STOP_S = 5.0
"""How long `stop()` lets requests in progress finish before it cancels them."""
READ_SIZE = 64 * 1024
MAX_HEAD = 16 * 1024  # h11's default limit on a request's line and headers
TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1"})
"""Peers whose X-Forwarded-Proto/-For are believed: a reverse proxy on the box (uvicorn's default trusts 127.0.0.1)."""


class _Connection:
    """One client: request/response cycles until either side closes, a limit passes, or the server stops."""

    def __init__(self, app: App, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.app, self.reader, self.writer = app, reader, writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.idle = True
        self.stopping = False
        self._server = _address(writer.get_extra_info("sockname"))
        self._client = _address(writer.get_extra_info("peername"))

    async def run(self) -> None:
        try:
            first = True
            while not self.stopping and await self._cycle(HEAD_S if first else KEEP_ALIVE_S):
                first = False
                if self.h11.our_state is not h11.DONE or not self._request_read():
                    break  # Connection: close, HTTP/1.0, or a body the app did not read
                self.h11.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):  # a reset, or a broken body framing found after the answer
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    def _request_read(self) -> bool:
        """Take the end of a request the app did not read (a GET's empty body) from what is buffered; a body
        still on the wire closes the connection rather than being read for nobody."""
        while self.h11.their_state is h11.SEND_BODY:
            if self.h11.next_event() is h11.NEED_DATA:
                return False
        return self.h11.their_state is h11.DONE

    async def _event(self) -> Any:
        while (event := self.h11.next_event()) is h11.NEED_DATA:
            self.h11.receive_data(await self.reader.read(READ_SIZE))
        return event

    async def _request(self, idle: float) -> Any:
        """The next request: its first bytes within `idle` seconds, the rest of its head within HEAD_S."""
        event = self.h11.next_event()
        if event is h11.NEED_DATA:
            self.h11.receive_data(await asyncio.wait_for(self.reader.read(READ_SIZE), idle))
            event = await asyncio.wait_for(self._event(), HEAD_S)
        return event

    async def _cycle(self, idle: float) -> bool:
        """One request and its response; False when the connection is to be closed."""
        self.idle = True
        try:
            event = await self._request(idle)
        except TimeoutError:
            return False
        except h11.RemoteProtocolError as exc:
            await self._refuse(exc.error_status_hint, str(exc))
            return False
        if not isinstance(event, h11.Request):
            return False  # the client closed
        self.idle = False
        exchange = _Exchange(self, event)
        try:
            await self.app(exchange.scope(), exchange.receive, exchange.send)
        except Exception:
            log.exception("API: %s %s failed", exchange.method, exchange.path)
            if not exchange.started:
                await self._refuse(500, "Internal Server Error")
            return False
        if not exchange.started:
            log.error("API: %s %s returned without a response", exchange.method, exchange.path)
            await self._refuse(500, "Internal Server Error")
            return False
        return exchange.complete

    async def _refuse(self, status: int, text: str) -> None:
        """A plain-text error and the end of the connection (a bad request line, an app that failed)."""
        if self.h11.our_state not in {h11.IDLE, h11.SEND_RESPONSE}:
            return
        body = text.encode("utf-8", "replace")
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), (b"date", _date())]
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            self.writer.write(self.h11.send(h11.Response(status_code=status, headers=headers)) or b"")
            self.writer.write(self.h11.send(h11.Data(data=body)) or b"")
            self.writer.write(self.h11.send(h11.EndOfMessage()) or b"")
            await self.writer.drain()


class _Exchange:
    """The ASGI `receive` and `send` of one request."""

    def __init__(self, conn: _Connection, request: h11.Request) -> None:
        self.conn, self.request = conn, request
        self.method = request.method.decode("ascii")
        raw_path, _, self.query = request.target.partition(b"?")
        self.raw_path = raw_path
        self.path = unquote(raw_path.decode("ascii", "replace"))
        self.started = self.complete = self._body_read = False
        self._done = asyncio.Event()  # the response is complete, or the connection failed

    def scope(self) -> dict[str, Any]:
        c = self.conn
        scheme, client = "http", c._client
        if client is not None and client[0] in TRUSTED_PROXIES:
            headers = dict(self.request.headers)
            proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
            if proto in {"http", "https"}:
                scheme = proto
            if forwarded := headers.get(b"x-forwarded-for"):
                client = (forwarded.decode("latin-1").split(",")[-1].strip(), 0)
        return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": self.request.http_version.decode("ascii"), "server": c._server, "client": client,
                "scheme": scheme, "method": self.method, "root_path": "", "path": self.path,
                "raw_path": self.raw_path, "query_string": self.query, "headers": list(self.request.headers),
                "state": {}}

    async def receive(self) -> Message:
        """The body in pieces; once it is read, wait until the response is done or the client is gone."""
        if self._body_read:
            await self._done.wait()
            return {"type": "http.disconnect"}
        h = self.conn.h11
        if h.they_are_waiting_for_100_continue:
            await self._write(h11.InformationalResponse(status_code=100, headers=[]))
        try:
            event = await asyncio.wait_for(self.conn._event(), BODY_S)
        except (TimeoutError, h11.RemoteProtocolError, ConnectionError):
            self._body_read = True
            self._done.set()
            return {"type": "http.disconnect"}
        if isinstance(event, h11.Data):
            return {"type": "http.request", "body": bytes(event.data), "more_body": True}
        self._body_read = True
        if isinstance(event, h11.EndOfMessage):
            return {"type": "http.request", "body": b"", "more_body": False}
        self._done.set()  # ConnectionClosed in the middle of the body
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self._done.is_set():
            return  # the client is gone or the response is complete: ignored, as uvicorn does
        kind = message["type"]
        if kind == "http.response.start" and not self.started:
            self.started = True
            headers = [(k.lower(), v) for k, v in message.get("headers", [])]
            if not any(k == b"date" for k, _ in headers):
                headers.append((b"date", _date()))
            await self._write(h11.Response(status_code=message["status"], headers=headers))
        elif kind == "http.response.body" and self.started:
            body = message.get("body", b"")
            if body and self.method != "HEAD":
                await self._write(h11.Data(data=body))
            if not message.get("more_body", False):
                await self._write(h11.EndOfMessage())
                self.complete = True
                self._done.set()
        else:
            raise RuntimeError(f"ASGI message {kind!r} out of order")

    async def _write(self, event: Any) -> None:
        try:
            self.conn.writer.write(self.conn.h11.send(event) or b"")
            await self.conn.writer.drain()
        except ConnectionError:
            self._done.set()


class Server:
    """Serve `app` on host:port in the running loop, until `stop()`."""

    def __init__(self, app: App, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self._server: asyncio.Server | None = None
        self._connections: dict[_Connection, asyncio.Task[None]] = {}

    async def start(self) -> int:
        """Listen; the port bound (the one asked for, or the kernel's pick for 0). Raises OSError (port in use)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=READ_SIZE)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(self.app, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._connections[conn] = task
        try:
            await conn.run()
        finally:
            self._connections.pop(conn, None)

    async def stop(self, timeout: float = STOP_S) -> None:
        """No new connections; idle ones closed; requests in progress get `timeout` seconds to finish."""
        if self._server is None:
            return
        self._server.close()
        for conn in list(self._connections):
            conn.stopping = True
            if conn.idle:
                conn.writer.close()
        pending = list(self._connections.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None


def _address(addr: Any) -> tuple[str, int] | None:
    return (str(addr[0]), int(addr[1])) if isinstance(addr, tuple) and len(addr) >= 2 else None


def _date() -> bytes:
    return formatdate(usegmt=True).encode("ascii")
