"""Who is calling: a bearer token (machines, scripts) or a signed-in person's session cookie, with a role.

Every write names who did it. Reads stay open on the box's LAN unless `api.sign_in.reads_need_sign_in`
(then `daemon/api/signin.py` guards them). A write made with the session cookie must carry `X-CSRF-Token`
equal to the session's CSRF value (the `cc_csrf` cookie): another site's form can send the cookie, but it
cannot read the value. Bearer callers need no CSRF header (a browser never adds the header by itself)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from daemon.api.sessions import SignIn
from daemon.config.schema import ApiConfig

log = logging.getLogger("coldchain.api")

SESSION_COOKIE = "cc_session"
CSRF_COOKIE = "cc_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    role: str
    via: str = "token"  # token | session


class Tokens:
    """Resolves tokens once at start (compared in constant time) and sessions per request."""

    def __init__(self, cfg: ApiConfig, sign_in: SignIn | None = None) -> None:
        self.sign_in = sign_in
        self._tokens: list[tuple[str, Caller]] = []
        for t in cfg.tokens:
            try:
                self._tokens.append((t.token.resolve(), Caller(t.name, t.role)))
            except ValueError as exc:
                log.error("API token for %s unusable: %s", t.name, exc)

    def caller(self, authorization: str | None) -> Caller | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        given = authorization[7:].strip().encode()
        for secret, caller in self._tokens:
            if hmac.compare_digest(given, secret.encode()):
                return caller
        return None

    async def identify(self, request: Request) -> Caller | None:
        """The caller of a request: its bearer token, else its session (CSRF-checked on writes), else None."""
        c = self.caller(request.headers.get("authorization"))
        if c is not None or self.sign_in is None:
            return c
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        s = await asyncio.to_thread(self.sign_in.resolve, token)
        if s is None:
            return None
        if request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given.encode(), s.csrf.encode()):
                raise HTTPException(403, f"a write with the session cookie needs the {CSRF_HEADER} header "
                                         f"(the {CSRF_COOKIE} cookie's value)")
        return Caller(s.username, s.role, "session")

    def require(self, *roles: str) -> Callable[[Request], Awaitable[Caller]]:
        """A FastAPI dependency: 401 without a valid token or session, 403 with the wrong role."""

        async def dep(request: Request) -> Caller:
            c = await self.identify(request)
            if c is None:
                raise HTTPException(401, "sign in, or send a valid bearer token, for this action",
                                    headers={"WWW-Authenticate": "Bearer"})
            if c.role not in roles:
                raise HTTPException(403, f"role {c.role!r} may not do this (needs {' or '.join(roles)})")
            return c

        return dep
