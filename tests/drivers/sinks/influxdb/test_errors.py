"""How each sink maps HTTP answers to retry-or-isolate, against a scripted HTTP server (a unit-test fake;
the real-server tests are test_v1.py and test_v2.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daemon.ports.errors import SinkError
from daemon.ports.model import Quantity, Reading
from drivers.sinks.influxdb import InfluxDB1Config, InfluxDB1Sink, InfluxDB2Config, InfluxDB2Sink

pytestmark = pytest.mark.asyncio
READING = Reading("c1", "z1", "s1", Quantity.TEMPERATURE, 1.5, 1_763_800_000.0, id=1)


class Scripted(BaseHTTPRequestHandler):
    status = 204
    body = b""
    seen: list[dict[str, Any]] = []  # noqa: RUF012 - shared with the test on purpose

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        Scripted.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    Scripted.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def v1(url: str, **kw: Any) -> InfluxDB1Sink:
    return InfluxDB1Sink(InfluxDB1Config(id="a", type="influxdb1", url=url, database="cc", **kw), {})


def v2(url: str, **kw: Any) -> InfluxDB2Sink:
    return InfluxDB2Sink(InfluxDB2Config(id="b", type="influxdb2", url=url, org="o", bucket="bk", **kw), {})


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (413, False), (401, True), (404, True),
                                                   (500, True), (503, True)])
async def test_v1_status_mapping(server: str, status: int, retryable: bool) -> None:
    Scripted.status, Scripted.body = status, b'{"error":"partial write: field type conflict"}'
    with pytest.raises(SinkError) as err:
        await v1(server).write([READING])
    assert err.value.retryable is retryable and f"HTTP {status}" in str(err.value)
    assert "field type conflict" in str(err.value)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (413, False), (422, False), (401, True),
                                                   (404, True), (429, True), (500, True), (503, True)])
async def test_v2_status_mapping(server: str, status: int, retryable: bool) -> None:
    Scripted.status, Scripted.body = status, b'{"code":"invalid","message":"unable to parse line"}'
    with pytest.raises(SinkError) as err:
        await v2(server, token="tok-123").write([READING])
    assert err.value.retryable is retryable and f"HTTP {status}" in str(err.value)
    assert "unable to parse line" in str(err.value) and "tok-123" not in str(err.value)


async def test_v1_sends_basic_auth_gzip_and_ms(server: str, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("pa:ss\n")
    Scripted.status, Scripted.body = 204, b""
    await v1(server, username="cc", password_file=str(tmp_path / "pw"), retention_policy="two_years").write([READING])
    req = Scripted.seen[0]
    assert req["path"] == "/write?db=cc&precision=ms&rp=two_years"
    assert req["headers"]["authorization"] == "Basic Y2M6cGE6c3M="  # cc:pa:ss
    assert req["headers"]["content-encoding"] == "gzip"


async def test_v2_sends_token_and_ms(server: str) -> None:
    Scripted.status, Scripted.body = 204, b""
    await v2(server, token="tok-123").write([READING])
    req = Scripted.seen[0]
    assert req["path"].startswith("/api/v2/write?") and "precision=ms" in req["path"] and "bucket=bk" in req["path"]
    assert req["headers"]["authorization"] == "Token tok-123"
