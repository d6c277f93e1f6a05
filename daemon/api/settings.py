"""The settings view for managers and installers: the running config with every secret blanked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from daemon.api.auth import Caller, Tokens
from daemon.api.services import Services

SECRET_KEYS = frozenset({"value", "password", "token", "secret", "access_key_secret", "secret_key"})


def redact(node: Any) -> Any:
    """A copy with the value of every secret-looking key replaced (a reference to a file or env var stays)."""
    if isinstance(node, dict):
        return {k: ("***" if k in SECRET_KEYS and isinstance(v, str) else redact(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [redact(v) for v in node]
    return node


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()

    @r.get("/api/v1/config")
    async def config_view(caller: Caller = Depends(tokens.require("manager", "installer"))) -> dict[str, Any]:  # noqa: B008
        out: dict[str, Any] = redact(d.cfg.model_dump(mode="json"))
        return out

    return r
