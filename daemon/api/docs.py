"""`/api/docs` without internet: Swagger UI's script and style served from a package, not a CDN.

FastAPI's own docs page loads Swagger UI from a CDN, so on a box without internet (or where the CDN is
slow or blocked, as in mainland China) the page stays blank. The assets ship as package data of
`fastapi-offline` (pinned in pyproject.toml); only its files are used, the page is FastAPI's, with the
favicon and the spec validator (which calls an outside host) pointed at nothing outside the box.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

ASSETS = files("fastapi_offline").joinpath("static")
PREFIX = "/api/docs/assets"
_TYPES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8",
          "favicon.png": "image/png"}


def router(title: str, openapi_url: str) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/api/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - API", swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css", swagger_favicon_url=f"{PREFIX}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})

    @r.get(PREFIX + "/{name}")
    async def asset(name: str) -> Response:
        if name not in _TYPES:
            raise HTTPException(404, f"no asset {name!r}")
        return Response(ASSETS.joinpath(name).read_bytes(), media_type=_TYPES[name],
                        headers={"Cache-Control": "public, max-age=86400"})

    return r
