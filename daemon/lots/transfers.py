"""Splitting a lot into child codes and merging lots into one: the chain of custody goes on under new codes.

A split ends the parent's stay and closes it; each child starts its own stay in the same room at the same
moment and names the parent (`lots.parents`). A merge does the same the other way round. One lot event
records each (`split`: a TransformationEvent, `merge`: an AggregationEvent in `daemon/lots/epcis.py`),
so the record of a child reaches back through its parent's stays (`daemon/lots/chain.py`).
"""

from __future__ import annotations

from typing import Any

from daemon.lots.store import LotConflict, LotError, Lots, Who, _happened, _when


def split(lots: Lots, code: str, children: list[tuple[str, float | None]], now: float, who: Who, *,
          at: float | None = None) -> list[dict[str, Any]]:
    """The lot `code` becomes `children` ((code, quantity) each) in the room it is in; it is closed."""
    if len(children) < 1:
        raise LotError("a split needs at least one child code")
    codes = [c for c, _ in children]
    if len(set(codes)) != len(codes) or code in codes:
        raise LotError("child codes must differ from each other and from the parent")
    parent = lots.get(code)
    if parent["zone"] is None:
        raise LotConflict(f"lot {code} has been checked out")
    for c in codes:
        lots._check_new(c, parent["commodity"], parent["zone"])
    st = lots.journal.lots
    final = lots.precool.final_for_lot(code, min(at, now) if at is not None else now)
    with lots.journal.transaction() as tx:
        stay = lots._require_open(tx, code)
        start = st.open_stay_start(tx, code)
        when = _happened(at, now, start)
        st.end_stay(tx, stay[0], when, who.name)
        lots.precool.lot_left(tx, code, when, who.name, final, "split")
        st.check_out(tx, code, when)
        for c, qty in children:
            if st.exists(tx, c):
                raise LotConflict(f"lot {c} is already registered")
            st.insert(tx, c, parent["commodity"], qty, parent["unit"], parent["origin"], when, who.name)
            st.start_stay(tx, c, stay[1], when, who.name)
            st.set_lineage(tx, c, None, [code])
        lots.journal.lot_events.add(tx, when, "split", code, who.name, now, zone=stay[1],
                                    ended=(stay[1], start or when), inputs=[code], outputs=codes)
        lots._audit(tx, now, who, "lot.split", code, {"zone": stay[1], "children": codes, **_when(when, now)})
    return [lots.get(c) for c in codes]


def merge(lots: Lots, codes: list[str], new: str, now: float, who: Who, *, zone: str | None = None,
          at: float | None = None) -> dict[str, Any]:
    """The lots `codes` (one commodity, all in storage) become the lot `new`, in `zone` (default: the first's)."""
    if len(codes) < 2 or len(set(codes)) != len(codes) or new in codes:
        raise LotError("a merge needs two or more different codes, and a new code for the result")
    inputs = [lots.get(c) for c in codes]
    if len({x["commodity"] for x in inputs}) != 1:
        raise LotError("lots of different commodities cannot be merged")
    if (closed := [x["code"] for x in inputs if x["zone"] is None]):
        raise LotConflict(f"checked out already: {', '.join(closed)}")
    room = zone or inputs[0]["zone"]
    lots._check_new(new, inputs[0]["commodity"], room)
    units = {x["unit"] for x in inputs}
    qtys = [x["quantity"] for x in inputs]
    quantity = sum(q for q in qtys if q is not None) if len(units) == 1 and None not in qtys else None
    origins = sorted({x["origin"] for x in inputs if x["origin"]})
    st = lots.journal.lots
    finals = {c: lots.precool.final_for_lot(c, min(at, now) if at is not None else now) for c in codes}
    with lots.journal.transaction() as tx:
        if st.exists(tx, new):
            raise LotConflict(f"lot {new} is already registered")
        latest = max(float(st.open_stay_start(tx, c) or 0.0) for c in codes)
        when = _happened(at, now, latest)
        for c in codes:
            stay = lots._require_open(tx, c)
            st.end_stay(tx, stay[0], when, who.name)
            lots.precool.lot_left(tx, c, when, who.name, finals[c], "merge")
            st.check_out(tx, c, when)
        st.insert(tx, new, inputs[0]["commodity"], quantity, units.pop() if len(units) == 1 else None,
                  "; ".join(origins)[:200] or None, when, who.name)
        st.start_stay(tx, new, room, when, who.name)
        st.set_lineage(tx, new, None, codes)
        lots.journal.lot_events.add(tx, when, "merge", new, who.name, now, zone=room, inputs=codes, outputs=[new])
        lots._audit(tx, now, who, "lot.merge", new, {"zone": room, "inputs": codes, **_when(when, now)})
    return lots.get(new)
