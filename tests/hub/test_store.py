"""The hub's writes and reads against a real PostgreSQL 15: idempotent, order-free, refusing another site's data."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from hub import queries, store
from hub.contract import BadMessage, parse
from tests.hub.boxes import T0, alarm, event, raw, report, site_msg

pytestmark = pytest.mark.peer
H = 3_600_000


def msgs() -> list[tuple[str, bytes]]:
    """Center A commissions L1 and L2, L1 is shipped to B and received there; L2 is split into L2-a (stays at A)."""
    return [
        ("coldchain/a/site", raw(site_msg("a", T0, [("z1", 40.0), ("z2", None)]))),
        ("coldchain/b/site", raw(site_msg("b", T0, [("r1", 10.0)]))),
        ("coldchain/a/status", raw({"state": "online", "ts": T0})),
        ("coldchain/a/events/epcis", raw(event("a", 1, "commissioning", "L1", T0, "z1", qty=3.0))),
        ("coldchain/a/events/epcis", raw(event("a", 2, "commissioning", "L2", T0 + 1000, "z1", qty=5.0))),
        ("coldchain/a/events/epcis", raw(event("a", 3, "shipping", "L1", T0 + 2 * H, None, **{
            "cc:destination": "b", "sensorElementList": report(4.1, 5.2, 7.9)}))),
        ("coldchain/b/events/epcis", raw(event("b", 1, "receiving", "L1", T0 + 5 * H, "r1", qty=3.0, **{
            "cc:source": "a", "sensorElementList": report(6.0, 7.0, 8.5, transit=True)}))),
        ("coldchain/a/events/epcis", raw(event("a", 4, "commissioning", "L2-a", T0 + 3 * H, "z1", **{
            "cc:inputLots": ["L2"], "cc:outputLots": ["L2-a"],
            "outputQuantityList": [{"epcClass": "urn:coldchain:lot:L2-a", "quantity": 4.0, "uom": "TNE"}]}))),
        ("coldchain/a/events/alarms", raw(alarm("a", 7, "open", T0 + H))),
        ("coldchain/a/events/alarms", raw(alarm("a", 7, "acknowledged", T0 + H + 60_000, by="zhang"))),
        ("coldchain/a/events/alarms", raw(alarm("a", 8, "open", T0 + H))),
        ("coldchain/a/events/alarms", raw(alarm("a", 8, "resolved", T0 + 2 * H))),
        ("coldchain/a/readings/z1/s1/temperature", raw({"ts": T0 + 6 * H, "value": 5.0, "unit": "°C",
                                                         "quality": "good", "id": 1})),
    ]


def apply_all(pg: Any, messages: list[tuple[str, bytes]]) -> list[str]:
    out = []
    for topic, body in messages:
        record = parse(topic, body)
        assert record is not None
        out.append(store.apply(pg, record, now_ms=T0 + 7 * H))
    return out


def summary(pg: Any) -> Any:
    chain = queries.chain(pg, "L2-a")
    return (queries.centers(pg), queries.open_alarms(pg), queries.capacity(pg), queries.chain(pg, "L1").legs,
            chain.lots, [e["event_id"] for e in chain.events],
            pg.execute("SELECT count(*) FROM events").fetchone(), pg.execute("SELECT count(*) FROM alarm_changes").fetchone())


def test_region_from_the_messages(pg: Any) -> None:
    assert set(apply_all(pg, msgs())) == {"stored"}
    centers = {c["site"]: c for c in queries.centers(pg)}
    assert centers["a"]["state"] == "online" and centers["a"]["name"] == "a 冷库"
    assert centers["a"]["last_ts"] == T0 + 6 * H and centers["a"]["lag_ms"] == H  # the reading is an hour old
    assert centers["b"]["state"] is None  # no status yet: neither online nor offline
    [live] = queries.open_alarms(pg)
    assert (live["site"], live["id"], live["state"], live["acked_by"]) == ("a", "7", "acknowledged", "zhang")
    rooms = {(r["site"], r["zone"]): r for r in queries.capacity(pg)}
    assert (rooms["a", "z1"]["lots"], rooms["a", "z1"]["occupied"], rooms["a", "z1"]["free"]) == (1, 4.0, 36.0)
    assert (rooms["b", "r1"]["lots"], rooms["b", "r1"]["occupied"]) == (1, 3.0)  # L1 moved from a to b
    assert rooms["a", "z2"]["free"] is None
    legs = queries.chain(pg, "L1").legs
    assert [(leg["kind"], leg["site"], leg["zone"]) for leg in legs] == [
        ("stay", "a", "z1"), ("transit", "a", None), ("stay", "b", "r1")]
    assert legs[0]["until"] == T0 + 2 * H and legs[0]["temperature"] == {"min": 4.1, "max": 7.9, "mean": 5.2}
    assert legs[1]["destination"] == "b" and legs[1]["until"] == T0 + 5 * H
    assert legs[1]["temperature"] == {"min": 6.0, "max": 8.5, "mean": 7.0}  # the logger's trip, from receiving
    assert queries.chain(pg, "L2-a").lots == ["L2", "L2-a"]  # the split's chain reaches back to its parent


def test_redelivered_and_reordered_messages_change_nothing(pg: Any) -> None:
    """Every message twice, in a shuffled order: the same region as once in order."""
    apply_all(pg, msgs())
    once = summary(pg)
    pg.execute("TRUNCATE centers, rooms, event_lots, events, lot_places, alarm_changes, alarms")
    pg.commit()
    twice = list(itertools.chain(msgs(), msgs()))
    random.Random(16).shuffle(twice)
    outcomes = apply_all(pg, twice)
    assert outcomes.count("duplicate") >= len(msgs()) - 2  # readings carry no identity; the rest are recognised
    assert summary(pg) == once


def test_a_day_of_back_fill_shows_its_lag_and_keeps_the_chain(pg: Any) -> None:
    """Back online after a day: the status is current at once, the lag is the age of the newest data received."""
    now = T0 + 30 * H
    record = parse("coldchain/a/status", raw({"state": "online", "ts": now}))
    assert record is not None
    store.apply(pg, record, now_ms=now)
    backlog = [("coldchain/a/events/epcis", raw(event("a", i, step, "L7", T0 + i * H, "z1")))
               for i, step in enumerate(("commissioning", "storing", "storing"))]
    lags = []
    for i, (topic, body) in enumerate(backlog):
        rec = parse(topic, body)
        assert rec is not None
        store.apply(pg, rec, now_ms=now + i * 1000)
        lags.append(queries.centers(pg)[0]["lag_ms"])
    assert lags == [30 * H, 29 * H + 1000, 28 * H + 2000]  # oldest first: the lag shrinks as the back-fill runs
    assert queries.centers(pg)[0]["state"] == "online"
    assert [leg["since"] for leg in queries.chain(pg, "L7").legs] == [T0]  # one stay; the re-stores are inside it


@pytest.mark.parametrize(("topic", "body", "says"), [
    ("coldchain/a/events/epcis", raw(event("b", 1, "storing", "L9", T0, "r1")), "cc:site: 'b' is not the topic's site 'a'"),
    ("coldchain/a/events/alarms", raw(alarm("b", 1, "open", T0)), "site: 'b' is not the topic's site 'a'"),
    ("coldchain/a/site", raw(site_msg("b", T0, [])), "site: 'b' is not the topic's site 'a'"),
    ("coldchain/a/events/alarms", raw({**alarm("a", 1, "open", T0), "state": "gone"}), "state: 'gone'"),
    ("coldchain/a/status", b"{not json", "not JSON"),
    ("coldchain/a/status", raw({"state": "online", "ts": 10**30}), "ts: 10000000000000000000000000000"),
    ("coldchain/a/events/alarms", raw({**alarm("a", 1, "open", T0), "value": 1e308 * 10}), "value: inf is not finite"),
    ("coldchain/a/events/epcis", raw({**event("a", 1, "storing", "L9", T0), "eventTime": "2025-11-20T00:00"}),
     "eventTime: '2025-11-20T00:00' has no offset"),
])
def test_refused_messages_name_the_topic_and_key(pg: Any, topic: str, body: bytes, says: str) -> None:
    with pytest.raises(BadMessage) as err:
        parse(topic, body)
    assert str(err.value).startswith(topic + ": ") and says in str(err.value)
    store.reject(pg, err.value)
    assert pg.execute("SELECT topic FROM rejected").fetchall() == [(topic,)]


def test_a_batch_keeps_what_postgresql_refuses_as_refused_and_commits_the_rest(dsn: str) -> None:
    """JSON that PostgreSQL refuses (a NUL character in a text or a JSON body) inside a batch is kept as refused
    (its savepoint rolled back), never a crash and a redelivery loop of the whole batch; the others commit."""
    import psycopg

    from hub.worker import Settings, Worker

    worker = Worker(Settings(dsn=dsn))
    reading = raw({"ts": T0 + 5, "value": 5.0, "unit": "°C", "quality": "good", "id": 1})
    batch = [
        ("coldchain/a/events/alarms", raw(alarm("a", 0, "open", T0))),
        ("coldchain/a/events/alarms", raw({**alarm("a", 1, "open", T0), "text": "坏\u0000数据"})),
        ("coldchain/a/events/epcis", raw(event("a", 9, "storing", "L9", T0, "z1"))),
        ("coldchain/a/events/alarms", raw({**alarm("a", 2, "open", T0), "by": "\u0000"})),
        ("coldchain/a/events/epcis", raw(event("a", 1, "storing", "L1", T0, "z1", **{"cc:note": "\u0000"}))),
        ("coldchain/a/readings/z1/s1/temperature", reading),
        ("coldchain/a/events/alarms", raw(alarm("a", 3, "open", T0 + 1))),
    ]
    counts = worker.write(batch)
    assert (counts.refused, counts.stored, counts.readings, counts.batches, counts.largest) == (3, 3, 1, 1, 7)
    with psycopg.connect(dsn) as conn:  # another session: only what was committed
        reasons = [r[0] for r in conn.execute("SELECT reason FROM rejected ORDER BY id")]
        assert len(reasons) == 3 and all(r.startswith("PostgreSQL cannot store it: ") for r in reasons), reasons
        assert conn.execute("SELECT id FROM alarms ORDER BY id").fetchall() == [("0",), ("3",)]
        assert conn.execute("SELECT lot FROM events").fetchall() == [("L9",)]
        assert conn.execute("SELECT last_ts FROM centers").fetchall() == [(T0 + 1,)]  # the reading's lag waits
    worker.write([], force_lag=True)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT last_ts FROM centers").fetchall() == [(T0 + 5,)]
    good = [batch[i] for i in (0, 2, 6)]
    again = worker.write(good + good)  # a redelivered batch, each message twice: all pipelined, nothing new
    assert (again.stored, again.duplicate, again.refused) == (0, 6, 0)
    fresh = [("coldchain/a/events/epcis", raw(event("a", 10, "storing", "L10", T0, "z1"))),
             ("coldchain/a/events/alarms", raw(alarm("a", 10, "open", T0)))]
    twice = worker.write(fresh + fresh)  # new, and twice in one INSERT: the first copy is stored, the second not
    assert (twice.stored, twice.duplicate, twice.refused) == (2, 2, 0)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM event_lots WHERE event_id = "
                            "(SELECT event_id FROM events WHERE lot = 'L10')").fetchone() == (2,)


def test_a_batch_caught_in_a_deadlock_is_redone_whole(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """Another session holds the center's row and then wants the event the worker's batch holds uncommitted:
    PostgreSQL aborts the worker's transaction (its deadlock_timeout, 1 s, is the shorter), and the worker redoes
    the batch instead of dying; the event, stored meanwhile by the other session, is then a duplicate."""
    import threading

    import psycopg

    from hub.worker import Settings, Worker
    from tests.peers import wait_until

    message = ("coldchain/a/events/epcis", raw(event("a", 1, "storing", "L1", T0, "z1")))
    record = parse(*message)
    assert record is not None
    with psycopg.connect(dsn) as setup:
        setup.execute("INSERT INTO centers (site) VALUES ('a')")
    worker, out = Worker(Settings(dsn=dsn, client_id="hub-deadlock")), {}
    with psycopg.connect(dsn) as other:
        other.execute("SET deadlock_timeout = '60s'")
        other.execute("SELECT site FROM centers WHERE site = 'a' FOR UPDATE")
        thread = threading.Thread(target=lambda: out.update(counts=worker.write([message])))
        thread.start()
        wait_until(lambda: waiting_on_a_lock(dsn, "hub-deadlock"), 30, "the batch waiting on the center's row")
        store.apply(other, record)  # waits on the worker's uncommitted event: the cycle PostgreSQL breaks
    thread.join(60)
    assert "redone" in caplog.text and "deadlock detected" in caplog.text
    assert (out["counts"].stored, out["counts"].duplicate) == (0, 1)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM event_lots").fetchone() == (2,)


def waiting_on_a_lock(dsn: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                 "AND wait_event_type = 'Lock'", (name,)).fetchone() == (1,))
