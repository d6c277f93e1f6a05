"""The API's HTTP/1.1 server (daemon/api/server.py) against real TCP clients on 127.0.0.1: keep-alive and
pipelining, bodies in pieces, HEAD, bad and oversized requests, an app that fails, the idle and slow-client
limits, and a stop that lets a request in progress finish. Each test also checks the answers with httpx, an
independent HTTP client, where a raw socket is not the point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from daemon.api import server as srv

pytestmark = pytest.mark.asyncio


RELEASE: dict[str, asyncio.Event] = {}


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app: /fail raises, /late answers after /release is asked, /stream sends three parts, /ignore answers
    without reading the body; anything else answers with the method, path, query and body length it got."""
    path = scope["path"]
    if path == "/fail":
        raise RuntimeError("the app failed")
    if path == "/late":
        await RELEASE["late"].wait()
    body = b""
    if path != "/ignore":
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    text = f"{scope['method']} {path} {scope['query_string'].decode()} {len(body)}".encode()
    if path == "/who":
        text = f"{scope['scheme']} {scope['client'][0]}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]})
    await send({"type": "http.response.body", "body": text})


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[srv.Server, int]]:
    RELEASE["late"] = asyncio.Event()
    s = srv.Server(echo, "127.0.0.1", 0)
    port = await s.start()
    yield s, port
    await s.stop(timeout=1)


async def raw(port: int, data: bytes, until_closed: bool = True) -> bytes:
    """Send `data` on a new connection; what came back before the server closed it (or 2 s of quiet)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 2 if until_closed else 0.5):
            out += chunk
    except TimeoutError:
        if until_closed:
            raise AssertionError(f"the server kept the connection open after {out!r}") from None
    writer.close()
    return out


async def test_answers_keep_the_connection_for_the_next_request(server: tuple[srv.Server, int]) -> None:
    _, port = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        first = await c.get("/a?x=1")
        second = await c.post("/b", content=b"x" * 100_000)
    assert (first.status_code, first.text) == (200, "GET /a x=1 0")
    assert (second.status_code, second.text) == (200, "POST /b  100000")
    assert first.headers["date"].endswith("GMT")


async def test_pipelined_requests_are_answered_in_order(server: tuple[srv.Server, int]) -> None:
    _, port = server
    req = b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n"
    out = await raw(port, req % 1 + req % 2 + b"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 3
    assert out.index(b"GET /1") < out.index(b"GET /2") < out.index(b"GET /3")


async def test_a_percent_encoded_path_is_decoded_and_kept_raw(server: tuple[srv.Server, int]) -> None:
    _, port = server
    out = await raw(port, b"GET /lot/%E6%89%B9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert "GET /lot/批".encode() in out


async def test_a_streamed_answer_is_chunked_and_whole(server: tuple[srv.Server, int]) -> None:
    _, port = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await c.get("/stream")
    assert (r.text, r.headers["transfer-encoding"]) == ("one two three", "chunked")
    old = await raw(port, b"GET /stream HTTP/1.0\r\n\r\n")  # HTTP/1.0 has no chunks: the close ends the body
    assert old.endswith(b"\r\n\r\none two three")


async def test_a_proxy_on_the_box_says_https_and_who_asked(server: tuple[srv.Server, int],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, port = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        assert (await c.get("/who")).text == "http 127.0.0.1"
        proxied = await c.get("/who", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.7, 192.168.1.20"})
        assert proxied.text == "https 192.168.1.20"
        assert (await c.get("/who", headers={"X-Forwarded-Proto": "gopher"})).text == "http 127.0.0.1"
        monkeypatch.setattr(srv, "TRUSTED_PROXIES", frozenset())  # a peer that is not the box: headers ignored
        forged = await c.get("/who", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.7"})
        assert forged.text == "http 127.0.0.1"


async def test_head_has_the_headers_and_no_body(server: tuple[srv.Server, int]) -> None:
    _, port = server
    out = await raw(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 10" in head.lower() and body == b""


async def test_expect_100_continue_is_answered_before_the_body(server: tuple[srv.Server, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 100")
    writer.write(b"hello")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
    assert await reader.readexactly(len(b"POST /up  5")) == b"POST /up  5"
    writer.close()


async def test_a_body_the_app_did_not_read_is_not_taken_as_a_request(server: tuple[srv.Server, int],
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    # the body holds a request of its own: reading it as the next request would smuggle it past a proxy
    _, port = server
    inner = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    out = await raw(port, b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(inner) + inner,
                    until_closed=False)
    assert out.count(b"HTTP/1.1 ") == 1 and b"smuggled" not in out
    # a body still on the wire when the app has answered: the connection is closed, not read for nobody
    out = await raw(port, b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + inner)
    assert out.count(b"HTTP/1.1 ") == 1 and b"smuggled" not in out
    # broken chunk framing in a body nobody read: found after the answer, the connection is closed
    out = await raw(port, b"POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + inner)
    assert out.count(b"HTTP/1.1 ") == 1 and b"smuggled" not in out
    await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # no connection task died with an exception


async def test_a_bad_request_line_gets_400_and_the_server_goes_on(server: tuple[srv.Server, int]) -> None:
    _, port = server
    assert (await raw(port, b"NOT HTTP AT ALL\r\n\r\n")).startswith(b"HTTP/1.1 400")
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4 * srv.READ_SIZE + b"\r\n\r\n"
    assert (await raw(port, big)).startswith(b"HTTP/1.1 431")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        assert (await c.get("/still")).text == "GET /still  0"


async def test_an_app_that_fails_gets_500_and_is_logged(server: tuple[srv.Server, int],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    _, port = server
    out = await raw(port, b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")  # closed after, although kept alive was asked
    assert out.startswith(b"HTTP/1.1 500") and out.endswith(b"Internal Server Error")
    assert any("GET /fail failed" in r.getMessage() for r in caplog.records)


async def test_an_idle_connection_is_closed_after_keep_alive(server: tuple[srv.Server, int],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, port = server
    monkeypatch.setattr(srv, "KEEP_ALIVE_S", 0.3)
    out = await raw(port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")  # raw() fails if it is not closed within 2 s
    assert out.count(b"HTTP/1.1 200") == 1


async def test_a_client_that_trickles_its_headers_is_closed(server: tuple[srv.Server, int],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, port = server
    monkeypatch.setattr(srv, "HEAD_S", 0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    closed = False
    for _ in range(40):  # a byte every 0.1 s: each read is quick, the head never ends
        writer.write(b"G")
        try:
            await writer.drain()
            if await asyncio.wait_for(reader.read(100), 0.1) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except ConnectionError:
            closed = True
            break
    writer.close()
    assert closed


async def test_stop_lets_a_request_in_progress_finish_and_closes_idle_ones(server: tuple[srv.Server, int]) -> None:
    s, port = server
    busy_r, busy_w = await asyncio.open_connection("127.0.0.1", port)
    busy_w.write(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
    idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
    idle_w.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(idle_r.readuntil(b"GET /a  0"), 5)
    await asyncio.sleep(0.1)  # /late is waiting in the app
    stopping = asyncio.create_task(s.stop(timeout=5))
    assert await asyncio.wait_for(idle_r.read(), 5) == b""  # the idle one is closed at once
    RELEASE["late"].set()
    answer = await asyncio.wait_for(busy_r.read(), 5)  # answered, then closed
    await stopping
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"GET /late  0")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    busy_w.close()
    idle_w.close()


async def test_a_port_in_use_is_an_oserror_at_start(server: tuple[srv.Server, int]) -> None:
    _, port = server
    with pytest.raises(OSError, match="in use"):
        await srv.Server(echo, "127.0.0.1", port).start()
