"""Capacity and occupancy from `lot_places` on a real PostgreSQL 15: the history is not read, and a hub whose
tables predate `lot_places` gets it filled from its events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub import queries, store
from tests.hub.boxes import T0, event, raw, site_msg
from tests.hub.test_store import H, apply_all, msgs

pytestmark = pytest.mark.peer


def relations(plan: Any) -> set[str]:
    """Every table an EXPLAIN (FORMAT JSON) plan reads."""
    if isinstance(plan, dict):
        own = {plan["Relation Name"]} if "Relation Name" in plan else set()
        return own.union(*(relations(v) for v in plan.values()))
    if isinstance(plan, list):
        return set().union(*(relations(v) for v in plan))
    return set()


def test_capacity_reads_the_places_not_the_history(pg: Any) -> None:
    apply_all(pg, msgs())
    [[plan]] = pg.execute("EXPLAIN (FORMAT JSON) " + queries.CAPACITY).fetchall()
    read = relations(plan if isinstance(plan, list) else json.loads(plan))
    assert read == {"rooms", "centers", "lot_places"}
    assert [(x["lot"], x["site"], x["zone"], x["quantity"]) for x in queries.lots_in_store(pg)] == [
        ("L1", "b", "r1", 3.0), ("L2-a", "a", "z1", 4.0)]  # L2 was consumed by the split, L1 moved on


def test_a_later_event_moves_the_lot_and_an_older_one_does_not(pg: Any) -> None:
    """Newest event time wins whatever the arrival order (a back-fill, two workers)."""
    apply_all(pg, [("coldchain/a/site", raw(site_msg("a", T0, [("z1", 40.0), ("z2", 40.0)]))),
                   ("coldchain/a/events/epcis", raw(event("a", 2, "storing", "L1", T0 + 2 * H, "z2", qty=6.0))),
                   ("coldchain/a/events/epcis", raw(event("a", 1, "commissioning", "L1", T0, "z1", qty=6.0)))])
    rooms = {r["zone"]: (r["lots"], r["occupied"], r["free"]) for r in queries.capacity(pg)}
    assert rooms == {"z1": (0, 0, 40.0), "z2": (1, 6.0, 34.0)}


def test_tables_from_before_get_their_places_from_the_events(pg: Any) -> None:
    apply_all(pg, msgs())
    before = queries.capacity(pg)
    pg.execute("DROP TABLE lot_places")
    pg.commit()
    store.create(pg)  # what a worker or `serve` does at start
    assert pg.execute("SELECT lot FROM lot_places ORDER BY lot").fetchall() == [("L1",), ("L2",), ("L2-a",)]
    assert queries.capacity(pg) == before
