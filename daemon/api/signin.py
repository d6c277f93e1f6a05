"""`/api/v1/session` (sign in, who am I, sign out), the `/login` page, and the guard of reads when they need a sign-in.

The contract with the pages (issue #15): POST answers `{user, role, csrf}` and sets `cc_session` (HttpOnly,
SameSite=Strict) and `cc_csrf` (readable by the page's script); 401 for a wrong name or password alike, 429
with `Retry-After` while the name is locked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from daemon.api.auth import CSRF_COOKIE, SAFE_METHODS, SESSION_COOKIE, Tokens
from daemon.api.lots import browser_lang
from daemon.api.pages import STATIC
from daemon.api.services import Services
from daemon.messages import LANGS, catalog

# open to anyone even when reads need a sign-in: the sign-in itself, its texts, the buyers' trace page, health
OPEN_PREFIXES = ("/login", "/static/login.js", "/api/v1/session", "/api/v1/messages/", "/trace/", "/api/v1/trace/",
                 "/healthz")


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)  # argon2 hashes any length; the bound keeps it cheap


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()
    sign_in = tokens.sign_in
    assert sign_in is not None
    cfg = d.cfg.api.sign_in

    def set_cookies(resp: Response, token: str, csrf: str) -> None:
        age = int(cfg.session_max)
        resp.set_cookie(SESSION_COOKIE, token, max_age=age, path="/", httponly=True, samesite="strict",
                        secure=cfg.secure_cookie)
        resp.set_cookie(CSRF_COOKIE, csrf, max_age=age, path="/", httponly=False, samesite="strict",
                        secure=cfg.secure_cookie)

    @r.post("/api/v1/session", responses={401: {}, 429: {}})
    async def start(body: Credentials) -> Response:
        a = await asyncio.to_thread(sign_in.attempt, body.username, body.password)
        if a.outcome == "locked":
            return JSONResponse({"detail": "too many wrong passwords: try again later"}, status_code=429,
                                headers={"Retry-After": str(a.retry_after)})
        if a.outcome != "ok":
            return JSONResponse({"detail": "wrong user name or password"}, status_code=401)
        resp = JSONResponse({"user": a.username, "role": a.role, "csrf": a.csrf})
        set_cookies(resp, a.token, a.csrf)
        return resp

    @r.get("/api/v1/session", responses={401: {}})
    async def current(request: Request) -> dict[str, Any]:
        token = request.cookies.get(SESSION_COOKIE)
        s = await asyncio.to_thread(sign_in.resolve, token) if token else None
        if s is None:
            raise HTTPException(401, "not signed in")
        return {"user": s.username, "role": s.role, "csrf": s.csrf}

    @r.delete("/api/v1/session", status_code=204, responses={403: {}})
    async def end(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token and await tokens.identify(request) is not None:  # raises 403 without the CSRF header
            await asyncio.to_thread(sign_in.sign_out, token)
        resp = Response(status_code=204)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        resp.delete_cookie(CSRF_COOKIE, path="/")
        return resp

    @r.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, lang: str | None = None) -> HTMLResponse:
        lang = lang if lang in LANGS else browser_lang(request.headers.get("accept-language", ""),
                                                         d.cfg.site.language)
        texts = {k: v for k, v in catalog(lang).items() if k.startswith("signin.")}
        page = STATIC.joinpath("login.html").read_text(encoding="utf-8")
        blob = json.dumps(texts, ensure_ascii=False).replace("<", "\\u003c")
        return HTMLResponse(page.replace("{{LANG}}", lang).replace("{{TEXTS}}", blob),
                            headers={"Cache-Control": "no-store"})

    @r.get("/static/login.js")
    async def login_js() -> Response:
        return Response(STATIC.joinpath("login.js").read_text(encoding="utf-8"),
                        media_type="text/javascript; charset=utf-8")

    return r


def guard_reads(app: FastAPI, tokens: Tokens) -> None:
    """With `reads_need_sign_in`: a page without a caller goes to /login, an API read answers 401."""

    @app.middleware("http")
    async def need_caller(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if request.method not in SAFE_METHODS or path.startswith(OPEN_PREFIXES):
            return await call_next(request)  # writes: each route's own Tokens.require
        if await tokens.identify(request) is not None:
            return await call_next(request)
        if "text/html" in request.headers.get("accept", "") and not path.startswith("/api/"):
            target = path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return JSONResponse({"detail": "sign in, or send a valid bearer token, to read this"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
