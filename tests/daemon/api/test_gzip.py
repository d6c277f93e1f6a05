"""gzip on the box's answers (daemon/api/compression.py), through a running daemon over HTTP: the first view's
scripts and JSON compressed for a browser that accepts gzip, byte for byte the same once decoded; small answers
and browsers without gzip get them as they are; PDF reports are never compressed again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.responses import Response

from daemon.api.compression import MIN_SIZE, add_gzip
from daemon.api.pages import STATIC
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from tests.conftest import make_config
from tests.daemon.api.test_history_api import CONFIG, T0

GZIP = {"Accept-Encoding": "gzip"}
PLAIN = {"Accept-Encoding": "identity"}


@pytest_asyncio.fixture
async def base(tmp_path: Path) -> AsyncIterator[str]:
    d = Daemon(make_config(tmp_path, CONFIG), clock=ManualClock(T0 + 86400))
    await d.start()
    try:
        d.journal.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 5.0 + (i % 7) / 10, T0 + i * 60)
                                   for i in range(1440)])
        yield f"http://127.0.0.1:{d.api_port}"
    finally:
        await d.stop()


@pytest.mark.asyncio
async def test_the_first_view_goes_gzipped(base: str) -> None:
    history = f"/api/v1/history?zone=z1&quantity=temperature&start={T0}&end={T0 + 86400}&max_points=1400"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for path, file in (("/static/vendor/uPlot.iife.min.js", "vendor/uPlot.iife.min.js"),
                           ("/static/app/history.js", "app/history.js"), (history, None)):
            zipped, plain = await http.get(path, headers=GZIP), await http.get(path, headers=PLAIN)
            assert zipped.status_code == plain.status_code == 200, path
            assert zipped.headers["content-encoding"] == "gzip" and "accept-encoding" in zipped.headers["vary"].lower(), path
            assert "content-encoding" not in plain.headers, path
            assert zipped.content == plain.content, path  # the same bytes once decoded
            if file is not None:
                assert plain.content == STATIC.joinpath(file).read_bytes()
            assert zipped.num_bytes_downloaded < plain.num_bytes_downloaded / 2, path  # scripts, JSON: > 2 x


@pytest.mark.asyncio
async def test_a_small_answer_goes_as_it_is(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.get("/api/v1/session", headers=GZIP)  # not signed in: a short 401
    assert r.status_code == 401 and len(r.content) < MIN_SIZE and "content-encoding" not in r.headers


@pytest.mark.asyncio
async def test_a_pdf_is_not_compressed_again() -> None:
    """The box's own setting on a small app: the same 20 KB of text as a PDF and as text."""
    app = FastAPI()
    body = b"%PDF-1.7 " + b"cold room " * 2000

    @app.get("/report.pdf")
    async def pdf() -> Response:
        return Response(body, media_type="application/pdf")

    @app.get("/report.txt")
    async def txt() -> Response:
        return Response(body, media_type="text/plain")

    add_gzip(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://box") as client:
        as_pdf, as_text = await client.get("/report.pdf", headers=GZIP), await client.get("/report.txt", headers=GZIP)
    assert "content-encoding" not in as_pdf.headers and as_pdf.content == body
    assert as_text.headers["content-encoding"] == "gzip" and as_text.content == body
