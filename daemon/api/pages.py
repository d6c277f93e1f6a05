"""The zones page: its HTML, its script and style, and the catalog texts the script shows."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from daemon.api.services import Services
from daemon.messages import LANGS, catalog

STATIC = files("daemon.api").joinpath("static")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def router(d: Services) -> APIRouter:
    r = APIRouter()

    @r.get("/api/v1/messages/{lang}")
    async def messages(lang: str) -> dict[str, str]:
        if lang not in LANGS:
            raise HTTPException(404, f"unknown language {lang!r}; known: {', '.join(LANGS)}")
        return {k: v for k, v in catalog(lang).items()
                if k.split(".")[0] in ("page", "state", "kind", "action", "app", "precool")}

    @r.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        html = STATIC.joinpath("index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("{{LANG}}", d.cfg.site.language))

    @r.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in ("app.js", "session.js", "style.css", "device.js", "device.css"):
            raise HTTPException(404)
        body = STATIC.joinpath(name).read_text(encoding="utf-8")
        return Response(body, media_type=_TYPES[name[name.rindex("."):]])

    return r
