"""The FastAPI application, assembled from one router per area; each route module says what it serves."""

from __future__ import annotations

import json
import sys

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from daemon import __version__
from daemon.api import (
    alerts,
    compression,
    docs,
    followup,
    health,
    history,
    kept,
    lots,
    metrics,
    pages,
    pages_app,
    period_stats,
    precool,
    reports,
    settings,
    signin,
    zones,
)
from daemon.api.auth import Tokens
from daemon.api.services import Services
from daemon.api.sessions import SignIn

# FastAPI imports pydantic.v1 (23 modules, ~1.2 MB of RSS) only to ask whether a route's model is a v1 one, and
# treats an ImportError as "no" (fastapi/_compat/shared.py). Nothing in the daemon uses pydantic.v1: a None entry
# makes that import fail at once. Where pydantic.v1 is loaded already, it stays.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]


def create_app(d: Services) -> FastAPI:
    # /api/docs is served from package assets (docs.py), not FastAPI's CDN-loading page
    app = FastAPI(title="coldchain-monitor", version=__version__, docs_url=None, redoc_url=None)
    tokens = Tokens(d.cfg.api, SignIn(d.journal.users, d.cfg.api.sign_in, d.clock.now))
    if d.cfg.api.sign_in.reads_need_sign_in:
        signin.guard_reads(app, tokens)
    compression.add_gzip(app)  # outermost: what the guard answers is compressed too
    # the order routes are matched (and listed in the OpenAPI document) in
    app.include_router(signin.router(d, tokens))  # before pages: its /static/login.js is not pages' /static/{name}
    app.include_router(reports.router(d, tokens))
    app.include_router(kept.router(d, tokens))
    app.include_router(history.router(d))
    app.include_router(period_stats.router(d))
    app.include_router(lots.router(d, tokens))
    app.include_router(precool.router(d, tokens))
    app.include_router(metrics.router(d))
    app.include_router(settings.router(d, tokens))
    app.include_router(health.router(d))
    app.include_router(zones.router(d))
    app.include_router(alerts.router(d, tokens))
    app.include_router(followup.router(d, tokens))
    app.include_router(pages.router(d))
    app.include_router(pages_app.router(d))
    app.include_router(docs.router(app.title, app.openapi_url or "/openapi.json"))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's own 422, but ASCII-escaped: it echoes the input, and a lone surrogate in it made the
        UTF-8 encoding of the error itself fail with a 500."""
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    return app
