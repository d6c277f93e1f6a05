"""Bearer tokens with roles: every write names who did it; reads stay open on the box's LAN."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Header, HTTPException

from daemon.config.schema import ApiConfig

log = logging.getLogger("coldchain.api")


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    role: str


class Tokens:
    """Resolves tokens once at start; compares in constant time."""

    def __init__(self, cfg: ApiConfig) -> None:
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

    def require(self, *roles: str) -> Callable[..., Caller]:
        """A FastAPI dependency: 401 without a valid token, 403 with the wrong role."""

        def dep(authorization: str | None = Header(None)) -> Caller:
            c = self.caller(authorization)
            if c is None:
                raise HTTPException(401, "a valid bearer token is required for this action",
                                    headers={"WWW-Authenticate": "Bearer"})
            if c.role not in roles:
                raise HTTPException(403, f"role {c.role!r} may not do this (needs {' or '.join(roles)})")
            return c

        return dep
