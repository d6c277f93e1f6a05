"""The manager's web app at /app: its page, its scripts, and the chart library that `make assets` builds.

The app is plain ES modules (static/app/) and uPlot (static/vendor/, from npm, gitignored): no bundler, no CDN,
so the box serves everything it needs with no internet."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from daemon.api.pages import STATIC
from daemon.api.services import Services

_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]*\.(js|css)$")
# the files change only with the package: a day in the browser's cache, revalidated after
_CACHE = {"Cache-Control": "public, max-age=86400"}


def _asset(folder: str, name: str) -> Response:
    m = _NAME.match(name)
    if m is None or ".." in name:
        raise HTTPException(404)
    path = STATIC.joinpath(folder).joinpath(name)
    if not path.is_file():
        if folder == "vendor":
            raise HTTPException(503, f"{name} is not built: run `make assets` (npm ci) in the checkout, "
                                     "then reinstall; see docs/webapp.md")
        raise HTTPException(404)
    return Response(path.read_bytes(), media_type=_TYPES[m.group(1)], headers=_CACHE)


def router(d: Services) -> APIRouter:
    r = APIRouter()

    @r.get("/app", response_class=HTMLResponse, include_in_schema=False)
    async def app_page() -> HTMLResponse:
        html = STATIC.joinpath("app").joinpath("index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("{{LANG}}", d.cfg.site.language))

    @r.get("/static/app/{name}", include_in_schema=False)
    async def app_asset(name: str) -> Response:
        return _asset("app", name)

    @r.get("/static/vendor/{name}", include_in_schema=False)
    async def vendor_asset(name: str) -> Response:
        return _asset("vendor", name)

    return r
