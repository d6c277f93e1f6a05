"""GET /api/v1/alerts with the alarm list's server-side filters (room, state, kind, period, fired) and keyset
paging (`before`, `next`), through a running daemon over HTTP. The expected rows come from the journal's rows
and plain Python conditions, not from the SQL under test."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.storage.alerts import AlertRow, NewAlert
from tests.conftest import make_config
from tests.daemon.api.test_history_api import CONFIG

pytestmark = pytest.mark.asyncio(loop_scope="module")
NOW = 1_763_568_000.0 + 40 * 86400
DAY = 86400.0
ZONES = ("z1", "z2", "_site")
KINDS = ("temp_high", "temp_low", "no_data", "box_health")
ENDS = ("pending", "cancelled", "firing", "acknowledged", "resolved", "closed")


def seed(d: Daemon, n: int = 90) -> None:
    """`n` alarms over 40 days in every room, kind and end state; their ids are not in the order of their start."""
    rnd = random.Random(15)
    a = d.journal.alerts
    with d.journal.transaction() as tx:
        for i in range(n):
            zone, kind, end = ZONES[i % 3], KINDS[(i // 3) % 4], ENDS[rnd.randrange(len(ENDS))]
            started = NOW - rnd.uniform(0, 40 * DAY)
            aid = a.insert(tx, NewAlert(f"{zone}/s/{kind}/{i}", zone, "s1", kind, "warning", started, 9.0, 8.0, 9.0,
                                        None), "pending")
            if end == "cancelled":
                a.cancel(tx, aid, started + 60, 9.0)
                continue
            if end != "pending":
                a.fire(tx, aid, started + 600, 9.5, 9.5, None, None)
            if end in ("acknowledged", "resolved", "closed"):
                a.acknowledge(tx, aid, started + 700, "zhang")
            if end in ("resolved", "closed"):
                a.resolve(tx, aid, started + 900, None, 7.0)
            if end == "closed":
                a.close(tx, aid, started + 1000, "李经理")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Daemon, httpx.AsyncClient]]:
    d = Daemon(make_config(tmp_path_factory.mktemp("alert-filters"), CONFIG), clock=ManualClock(NOW))
    await d.start()
    await asyncio.to_thread(seed, d)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=60) as http:
            yield d, http
    finally:
        await d.stop()


def shown(a: AlertRow) -> str:
    return "closed" if a.closed is not None else a.state


def in_state(state: str) -> Callable[[AlertRow], bool]:
    return lambda a: shown(a) == state


STATE_TEST = {s: in_state(s) for s in ("pending", "firing", "acknowledged", "resolved", "closed", "cancelled")}
STATE_TEST["open"] = lambda a: a.state in ("pending", "firing", "acknowledged") and a.closed is None


async def expected(d: Daemon, test: Callable[[AlertRow], bool]) -> list[int]:
    rows = await asyncio.to_thread(d.journal.alerts.find, limit=1_000_000)
    return [a.id for a in rows if test(a)]  # find() is newest id first


async def ids(http: httpx.AsyncClient, **params: Any) -> list[int]:
    r = await http.get("/api/v1/alerts", params={"limit": 5000, **params})
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["alerts"]]


async def test_each_filter_alone(running: tuple[Daemon, httpx.AsyncClient]) -> None:
    d, http = running
    everything = await expected(d, lambda a: True)
    cases: list[tuple[dict[str, Any], Callable[[AlertRow], bool]]] = [
        ({"zone": "z2"}, lambda a: a.zone == "z2"),
        ({"room": "_site"}, lambda a: a.zone == "_site"),
        ({"kind": "no_data"}, lambda a: a.kind == "no_data"),
        ({"since": NOW - 10 * DAY}, lambda a: a.started >= NOW - 10 * DAY),
        ({"until": NOW - 30 * DAY}, lambda a: a.started < NOW - 30 * DAY),
        ({"fired": "true"}, lambda a: a.fired is not None),
        ({"open": "true"}, STATE_TEST["open"]),
        *(({"state": s}, test) for s, test in STATE_TEST.items()),
    ]
    for params, test in cases:
        want = await expected(d, test)
        assert want and len(want) < len(everything), params  # the seed has rows in and out of each filter
        assert await ids(http, **params) == want, params


async def test_period_in_iso_8601_is_the_same_as_epoch_seconds(running: tuple[Daemon, httpx.AsyncClient]) -> None:
    _, http = running
    since, until = NOW - 20 * DAY, NOW - 5 * DAY
    iso = {"since": datetime.fromtimestamp(since, UTC).isoformat(),
           "until": datetime.fromtimestamp(until, UTC).isoformat().replace("+00:00", "Z")}
    got = await ids(http, **iso)
    assert got and got == await ids(http, since=since, until=until)


async def test_filters_together(running: tuple[Daemon, httpx.AsyncClient]) -> None:
    d, http = running
    since, until = NOW - 35 * DAY, NOW - 2 * DAY
    want = await expected(d, lambda a: a.zone == "z1" and a.kind == "temp_high" and a.fired is not None
                          and since <= a.started < until and shown(a) in ("acknowledged", "resolved", "closed"))
    got = []
    for s in ("acknowledged", "resolved", "closed"):
        got += await ids(http, zone="z1", kind="temp_high", fired="true", since=since, until=until, state=s)
    assert want and sorted(got, reverse=True) == want
    # open and a state: the open ones in that state (acknowledged is open, resolved is not)
    assert await ids(http, open="true", state="acknowledged") == await expected(d, STATE_TEST["acknowledged"])
    assert await ids(http, open="true", state="resolved") == []


async def pages(http: httpx.AsyncClient, size: int, between: Callable[[], Any] | None = None,
                **params: Any) -> list[int]:
    """Every page from the first, following `next`; `between` runs after the first page."""
    got: list[int] = []
    cursor: int | None = None
    while True:
        r = await http.get("/api/v1/alerts", params={**params, "limit": size,
                                                     **({"before": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["alerts"]) <= size
        got += [a["id"] for a in body["alerts"]]
        cursor = body["next"]
        if cursor is None:
            return got
        assert cursor == got[-1]
        if between is not None and len(got) == size:
            await between()


async def test_paging_visits_every_row_once(running: tuple[Daemon, httpx.AsyncClient]) -> None:
    d, http = running
    everything = await expected(d, lambda a: True)
    assert await pages(http, 7) == everything  # 90+ rows: 13+ pages, the last one short
    z1 = await expected(d, lambda a: a.zone == "z1" and a.fired is not None)
    assert await pages(http, 5, zone="z1", fired="true") == z1
    exact = await expected(d, lambda a: a.zone == "z2")
    r = await http.get("/api/v1/alerts", params={"zone": "z2", "limit": len(exact)})
    assert [a["id"] for a in r.json()["alerts"]] == exact and r.json()["next"] is None  # full, and the last
    r = await http.get("/api/v1/alerts", params={"zone": "z2", "limit": len(exact) - 1})
    assert r.json()["next"] == exact[-2]

    async def new_alarm() -> None:
        def write() -> None:
            with d.journal.transaction() as tx:
                d.journal.alerts.insert(tx, NewAlert("z1/s1/new", "z1", "s1", "temp_high", "warning", NOW, 9.0,
                                                     8.0, 9.0, None), "pending")
        await asyncio.to_thread(write)

    # an alarm raised while someone pages does not shift the later pages (keyset, not offset)
    assert await pages(http, 10, between=new_alarm) == everything


async def test_kinds_are_those_of_the_other_filters(running: tuple[Daemon, httpx.AsyncClient]) -> None:
    d, http = running
    r = await http.get("/api/v1/alerts", params={"zone": "_site", "kind": "temp_low", "limit": 1, "lang": "en"})
    kinds = r.json()["kinds"]
    rows = await asyncio.to_thread(d.journal.alerts.find, zone="_site", limit=1_000_000)
    assert [k["kind"] for k in kinds] == sorted({a.kind for a in rows})  # not only temp_low: the select keeps all
    assert {"kind": "temp_low", "text": "temperature low"} in kinds
    r = await http.get("/api/v1/alerts", params={"state": "closed", "since": NOW - 2 * DAY, "until": NOW - DAY})
    closed = await expected(d, lambda a: a.closed is not None and NOW - 2 * DAY <= a.started < NOW - DAY)
    rows = await asyncio.to_thread(d.journal.alerts.find, limit=1_000_000)
    assert [k["kind"] for k in r.json()["kinds"]] == sorted({a.kind for a in rows if a.id in closed})


@pytest.mark.parametrize(("params", "name"), [
    ({"state": "burning"}, "state"), ({"kind": "temp_hot"}, "kind"), ({"since": "yesterday"}, "since"),
    ({"until": "2025-13-01"}, "until"), ({"since": NOW, "until": NOW - DAY}, "until"), ({"before": 0}, "before"),
    ({"before": "x"}, "before"), ({"limit": 0}, "limit"), ({"zone": "z1", "room": "z2"}, "room"),
    ({"fired": "maybe"}, "fired"), ({"since": "nan"}, "since"), ({"until": "1e400"}, "until"),
])
async def test_a_bad_value_is_a_422_naming_it(running: tuple[Daemon, httpx.AsyncClient], params: dict[str, Any],
                                              name: str) -> None:
    _, http = running
    r = await http.get("/api/v1/alerts", params=params)
    assert r.status_code == 422
    detail = r.json()["detail"]
    if isinstance(detail, str):
        assert detail.startswith(f"{name}: ")
    else:
        assert [e["loc"] for e in detail] == [["query", name]]
