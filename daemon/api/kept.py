"""The scheduled reports kept on the box (`daemon/reports/scheduled.py`): a list and the downloads, for managers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from daemon.api.auth import Caller, Tokens
from daemon.api.download import attachment
from daemon.api.services import Services
from daemon.reports.scheduled import KEPT_NAME, ScheduledReports

_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}


def router(d: Services, tokens: Tokens) -> APIRouter:
    r = APIRouter()
    kept = ScheduledReports(d.journal, d.cfg, d.clock)
    manager = Depends(tokens.require("manager"))

    @r.get("/api/v1/reports/kept")
    async def listing(caller: Caller = manager) -> dict[str, Any]:
        return {"reports": kept.kept(), "keep_days": d.cfg.reports.keep / 86400}

    @r.get("/api/v1/reports/kept/{name}", responses={404: {}})
    async def download(name: str, caller: Caller = manager) -> FileResponse:
        m = KEPT_NAME.match(name)  # a plain file name of the folder: no path, no other file
        path = kept.dir / name
        if m is None or not path.is_file():
            raise HTTPException(404, f"no kept report {name!r}")
        return FileResponse(path, media_type=_TYPES[m["fmt"]], headers=attachment(name))

    return r
