"""A real HTTP server on 127.0.0.1 that records requests and answers from a script, for notifier tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"


@dataclass
class RecordingServer:
    """Answers every request with `reply` (or the next of `replies`) and keeps what it got."""

    host: str = "127.0.0.1"
    port: int = 0
    reply: Reply = field(default_factory=Reply)
    replies: list[Reply] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.host}:{self.port}"

    def answer(self, status: int = 200, body: str | bytes = "{}", content_type: str = "application/json") -> None:
        """Set the reply for the following requests."""
        self.reply = Reply(status, body.encode() if isinstance(body, str) else body, content_type)


def _handler(server: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            server.requests.append(Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                            body))
            reply = server.replies.pop(0) if server.replies else server.reply
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = _any

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    """A recording HTTP server on a free loopback port, stopped after the test."""
    rec = RecordingServer()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    yield rec
    srv.shutdown()
    srv.server_close()
    t.join()
