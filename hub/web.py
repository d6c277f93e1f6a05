"""The hub's HTTP side (FastAPI): the region page and JSON for staff, the public trace page, EPCIS 2.0 query/capture.

Stateless like the workers: every request reads PostgreSQL afresh, so any number of these can run behind a proxy.
Staff routes need the read token when one is set (they show who acknowledged an alarm); capture needs the capture
token and is off without one; the trace page and /healthz are public.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from hub import pages, queries, store
from hub.contract import BadMessage, event
from hub.texts import pick, t

EPCIS_CONTEXT = ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]


def _time(key: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(key, f"{value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise _bad(key, f"{value!r} has no offset (Z or +08:00)")
    return round(when.timestamp() * 1000)


def _bad(key: str, why: str) -> HTTPException:
    title = t("en", "epcis.bad_query", key=key, why=why)
    return HTTPException(400, {"type": "epcisException:QueryParameterException", "title": title, "status": 400})


def _split(value: str | None) -> tuple[str, ...]:
    """EPCIS REST lists are comma-separated (`EQ_bizStep=shipping,receiving`)."""
    return tuple(v for v in (value or "").split(",") if v)


class Db:
    """A connection per request: the hub keeps nothing between requests (a pool is PostgreSQL's, e.g. PgBouncer)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    @contextmanager
    def __call__(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.dsn, application_name="coldchain-hub-web") as conn:
            yield conn


def bearer(given: str | None, wanted: str | None) -> bool:
    """`given` is a header value (`Bearer x`) or a bare token; nothing matches an unset `wanted`."""
    token = (given or "").removeprefix("Bearer ").strip()
    return wanted is not None and hmac.compare_digest(token.encode(), wanted.encode())


def make_app(dsn: str, read_token: str | None = None, capture_token: str | None = None) -> FastAPI:
    """The app; with `read_token` None the staff routes are open (a hub on a closed network), capture is off."""
    app = FastAPI(title="coldchain hub", docs_url="/api/docs", openapi_url="/api/openapi.json")
    db = Db(dsn)

    def staff(authorization: Annotated[str | None, Header()] = None, token: str | None = None) -> None:
        if read_token is not None and not bearer(token or authorization, read_token):
            raise HTTPException(401, "a read token is needed", headers={"WWW-Authenticate": "Bearer"})

    app.include_router(staff_routes(db), dependencies=[Depends(staff)])
    app.include_router(epcis_query(db), dependencies=[Depends(staff)])
    app.include_router(public_routes(db))
    app.include_router(epcis_capture(db, capture_token))
    return app


def staff_routes(db: Db) -> APIRouter:
    r = APIRouter()

    @r.get("/api/centers")
    def centers() -> list[dict[str, Any]]:
        with db() as conn:
            return queries.centers(conn)

    @r.get("/api/alarms")
    def alarms() -> list[dict[str, Any]]:
        with db() as conn:
            return queries.open_alarms(conn)

    @r.get("/api/capacity")
    def capacity() -> list[dict[str, Any]]:
        with db() as conn:
            return queries.capacity(conn)

    @r.get("/api/chain/{code}")
    def chain(code: str) -> dict[str, Any]:
        with db() as conn:
            c = queries.chain(conn, code)
        if not c.events:
            raise HTTPException(404, f"no events for {code!r}")
        return {"code": c.code, "lots": c.lots, "legs": c.legs, "events": [e["body"] for e in c.events]}

    @r.get("/", response_class=HTMLResponse)
    def region(request: Request, lang: str | None = None, token: str | None = None) -> HTMLResponse:
        with db() as conn:
            refused = conn.execute("SELECT count(*) FROM rejected").fetchone()
            return HTMLResponse(pages.region(pick(lang, request.headers.get("accept-language")),
                                             queries.centers(conn), queries.open_alarms(conn),
                                             queries.capacity(conn), refused[0] if refused else 0,
                                             "&" + urlencode({"token": token}) if token else ""))

    return r


def public_routes(db: Db) -> APIRouter:
    r = APIRouter()

    @r.get("/healthz")
    def healthz() -> dict[str, Any]:
        with db() as conn:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
        return {"ok": True, "events": row[0] if row else 0}

    @r.get("/trace/{code}", response_class=HTMLResponse)
    def trace(code: str, request: Request, lang: str | None = None) -> HTMLResponse:
        with db() as conn:
            c = queries.chain(conn, code)
            places = queries.place_names(conn)  # centers' rooms and vehicles' compartments
        return HTMLResponse(pages.trace(pick(lang, request.headers.get("accept-language")), c, places),
                            status_code=200 if c.events else 404)

    return r


def epcis_query(db: Db) -> APIRouter:
    r = APIRouter()

    @r.get("/epcis/events")
    def events(
        EQ_bizStep: str | None = None, MATCH_epc: str | None = None, MATCH_anyEPC: str | None = None,
        EQ_site: str | None = None, GE_eventTime: str | None = None, LT_eventTime: str | None = None,
        perPage: Annotated[int, Query(ge=1, le=1000)] = 100, nextPageToken: str | None = None,
    ) -> JSONResponse:
        """EPCIS 2.0 SimpleEventQuery, the subset in docs/hub.md; list values are comma-separated."""
        q = queries.EventQuery(_split(EQ_bizStep), _split(MATCH_epc) + _split(MATCH_anyEPC), _split(EQ_site),
                               _time("GE_eventTime", GE_eventTime), _time("LT_eventTime", LT_eventTime),
                               perPage, nextPageToken)
        with db() as conn:
            try:
                found, token = queries.epcis_events(conn, q)
            except ValueError as exc:
                raise _bad("nextPageToken", str(exc)) from None
        doc = {"@context": EPCIS_CONTEXT, "type": "EPCISQueryDocument", "schemaVersion": "2.0",
               "creationDate": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
               "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": found}}}}
        headers = {"Link": f'<?nextPageToken={token}&perPage={perPage}>; rel="next"'} if token else {}
        return JSONResponse(doc, headers=headers)

    return r


def epcis_capture(db: Db, capture_token: str | None) -> APIRouter:
    r = APIRouter()

    @r.post("/epcis/capture", status_code=202)
    def capture(document: dict[str, Any], authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """An EPCISDocument, stored whole or not at all; events already held (same eventID) are counted, not redone."""
        if not bearer(authorization, capture_token):
            raise HTTPException(403, t("en", "epcis.capture_forbidden"))
        body = document.get("epcisBody")
        events = body.get("eventList") if isinstance(body, dict) else None
        if document.get("type") != "EPCISDocument" or not isinstance(events, list):
            raise HTTPException(400, "expected an EPCISDocument with epcisBody.eventList")
        try:
            records = [event(f"capture: eventList[{i}]", None, ev if isinstance(ev, dict) else {})
                       for i, ev in enumerate(events)]
        except BadMessage as bad:
            raise HTTPException(400, str(bad)) from None
        try:
            with db() as conn, conn.transaction():  # one transaction: each record's own becomes a savepoint in it
                outcomes = [store.apply(conn, rec) for rec in records]
        except psycopg.DataError as exc:  # a NUL character, a number out of range: nothing of the document is kept
            raise HTTPException(400, f"PostgreSQL cannot store it: {exc}".splitlines()[0]) from None
        return {"captured": outcomes.count("stored"), "duplicate": outcomes.count("duplicate")}

    return r
