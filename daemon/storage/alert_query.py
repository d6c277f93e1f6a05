"""The alarm list's query: filters (room, state, kind, period) and keyset paging over the `alerts` table.

A big site keeps thousands of alarms; the app asks for one page at a time instead of filtering all of them in
the browser. Paging is by id (`before`: rows with id < before, newest first), not by offset, so a page stays
right while new alarms arrive. Every value goes in as a bound parameter; only fixed fragments are SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from daemon.storage.alerts import COLUMNS, OPEN_STATES, AlertRow
from daemon.storage.db import Database

# The states a person filters by, as the app shows them: a closed alarm is a resolved one a manager closed
# (`closed` is set), so "resolved" and "acknowledged" mean not closed yet; "open" is what `open=true` means.
STATE_SQL: dict[str, str] = {
    "pending": "state = 'pending'",
    "firing": "state = 'firing'",
    "acknowledged": "state = 'acknowledged' AND closed IS NULL",
    "resolved": "state = 'resolved' AND closed IS NULL",
    "closed": "closed IS NOT NULL",
    "cancelled": "state = 'cancelled'",
    "open": f"state IN {OPEN_STATES} AND closed IS NULL",
}


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What the alarm list asks for; None means no condition. The period is on `started`: since <= t < until."""

    open_only: bool = False  # not resolved: pending, firing or acknowledged (`open=true`)
    zone: str | None = None
    state: str | None = None  # a key of STATE_SQL
    kind: str | None = None
    since: float | None = None
    until: float | None = None
    fired_only: bool = False  # only alarms that fired (a pending one cancelled within its delay never did)
    before: int | None = None  # the cursor: only ids below it


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page, newest first; `next` is the cursor of the following page, None on the last one."""

    rows: list[AlertRow]
    next: int | None


def where(f: AlertFilter) -> tuple[str, list[Any]]:
    """The WHERE clause of `f` and its bound values."""
    if f.state is not None and f.state not in STATE_SQL:
        raise ValueError(f"unknown state {f.state!r}")
    parts: list[str] = []
    args: list[Any] = []
    for sql, value in (("zone = ?", f.zone), ("kind = ?", f.kind), ("started >= ?", f.since),
                       ("started < ?", f.until), ("id < ?", f.before)):
        if value is not None:
            parts.append(sql)
            args.append(value)
    if f.state is not None:
        parts.append(f"({STATE_SQL[f.state]})")
    if f.open_only:
        parts.append(f"({STATE_SQL['open']})")
    if f.fired_only:
        parts.append("fired IS NOT NULL")
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


class AlertQuery:
    """Reads for the alarm list, on this thread's reader connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def page(self, f: AlertFilter, limit: int) -> AlertPage:
        """Up to `limit` rows matching `f`, newest first, and the cursor of the next page."""
        clause, args = where(f)
        rows = self._db.read(f"SELECT {COLUMNS} FROM alerts{clause} ORDER BY id DESC LIMIT ?", [*args, limit + 1])
        found = [AlertRow(*r) for r in rows[:limit]]
        return AlertPage(found, found[-1].id if len(rows) > limit else None)

    def kinds(self, f: AlertFilter) -> list[str]:
        """The kinds among the alarms `f` matches whatever its kind and cursor, for the kind filter's choices."""
        clause, args = where(replace(f, kind=None, before=None))
        return [str(r[0]) for r in self._db.read(f"SELECT DISTINCT kind FROM alerts{clause} ORDER BY kind", args)]
