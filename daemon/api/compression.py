"""gzip for what the box sends to a browser: the app's scripts, uPlot and the JSON of the history and alarm lists.

A phone on the center's Wi-Fi or 4G pays for every byte of the first view; uPlot alone is 51 KB and 22 KB
gzipped. Starlette's GZipMiddleware compresses per response when the browser accepts gzip; responses under
MIN_SIZE go as they are (the header and the work would outweigh the gain), and so do formats that are
compressed already (PDF reports, QR PNGs, the defaults' images and archives)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

MIN_SIZE = 1024
# zlib's own default: uPlot 51,081 -> 22,003 bytes; level 9 gives 21,991 (-0.05 %) for more CPU on a Pi's core
LEVEL = 6
NOT_COMPRESSED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/pdf")


def add_gzip(app: FastAPI) -> None:
    app.add_middleware(GZipMiddleware, minimum_size=MIN_SIZE, compresslevel=LEVEL,
                       exclude_content_types=NOT_COMPRESSED)
