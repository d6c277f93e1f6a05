"""Two workers' batches on a real PostgreSQL 15: the rows they share are locked in one order, so neither waits
for the other in a cycle (a deadlock, which PostgreSQL breaks by aborting one batch, redone whole)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hub import store
from hub.contract import Record, parse
from tests.hub.boxes import T0, event, raw, site_msg

pytestmark = pytest.mark.peer


def records(messages: list[tuple[str, bytes]]) -> list[Record]:
    out = []
    for topic, body in messages:
        record = parse(topic, body)
        assert record is not None
        out.append(record)
    return out


def test_status_and_site_wait_for_the_centers_pass_so_two_batches_do_not_deadlock(dsn: str) -> None:
    """Batch A has c2's status and an event of c1, batch B c1's site message and an event of c2. Written as they
    came, A held c2's row and B c1's until their commits, then each wanted the other's for its event's data time:
    PostgreSQL found the cycle and aborted one (the bench counted such redone batches). Now both only queue."""
    import psycopg

    with psycopg.connect(dsn) as setup:
        setup.execute("INSERT INTO centers (site) VALUES ('c1'), ('c2')")
    a = records([("coldchain/c2/status", raw({"state": "online", "ts": T0})),
                 ("coldchain/c1/events/epcis", raw(event("c1", 1, "storing", "L1", T0 + 1, "z1")))])
    b = records([("coldchain/c1/site", raw(site_msg("c1", T0, [("z1", 40.0)]))),
                 ("coldchain/c2/events/epcis", raw(event("c2", 1, "storing", "L2", T0 + 2, "z1")))])
    errors: list[BaseException] = []
    with psycopg.connect(dsn) as one, psycopg.connect(dsn) as two:
        laters = []
        for conn, batch in ((one, a), (two, b)):  # both batches written, uncommitted, before either finishes
            later = store.Later()
            assert "later" in store.write_many(conn, batch, later)
            laters.append(later)

        def finish(conn: psycopg.Connection[Any], later: store.Later) -> None:
            try:
                later.finish(conn, T0 + 10)
                conn.commit()
            except psycopg.Error as exc:
                errors.append(exc)
                conn.rollback()

        threads = [threading.Thread(target=finish, args=(conn, later))
                   for conn, later in ((one, laters[0]), (two, laters[1]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [str(e).splitlines()[0] for e in errors] == []
        assert [r[1] for r in laters[0].done + laters[1].done] == ["stored", "stored"]
    with psycopg.connect(dsn) as conn:
        got = conn.execute("SELECT site, state, name, last_ts FROM centers ORDER BY site").fetchall()
        assert got == [("c1", None, "c1 冷库", T0 + 1), ("c2", "online", None, T0 + 2)]
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (2,)


def test_a_status_postgresql_refuses_is_refused_alone(dsn: str) -> None:
    """A site message with a NUL in its name waits for the centers' pass like any other; refused there (in its own
    savepoint), it is kept in `rejected` and the batch's other rows commit."""
    import psycopg

    from hub.worker import Settings, Worker

    worker = Worker(Settings(dsn=dsn))
    counts = worker.write([("coldchain/a/site", raw(site_msg("a", T0, [("z1", 40.0)], name="坏\u0000名"))),
                           ("coldchain/a/status", raw({"state": "online", "ts": T0})),
                           ("coldchain/a/events/epcis", raw(event("a", 1, "storing", "L1", T0, "z1")))])
    assert (counts.stored, counts.refused, counts.redone) == (2, 1, 0)
    with psycopg.connect(dsn) as conn:
        [(topic, reason)] = conn.execute("SELECT topic, reason FROM rejected").fetchall()
        assert topic == "coldchain/a/site" and reason.startswith("PostgreSQL cannot store it: ")
        assert conn.execute("SELECT state, name FROM centers").fetchall() == [("online", None)]
        assert conn.execute("SELECT count(*) FROM rooms").fetchone() == (0,)
