"""The alarm list's query parameters, checked and turned into an `AlertFilter`: a bad value is a 422 that names
the parameter, before any SQL runs."""

from __future__ import annotations

import functools
from typing import Literal

from fastapi import HTTPException

from daemon.api.zones import parse_time
from daemon.messages import catalog
from daemon.storage.alert_query import AlertFilter

StateName = Literal["pending", "firing", "acknowledged", "resolved", "closed", "cancelled", "open"]


@functools.cache
def known_kinds() -> frozenset[str]:
    """Every alarm kind the journal can hold: each has its text (`kind.<kind>`) in the messages."""
    return frozenset(k.removeprefix("kind.") for k in catalog("en") if k.startswith("kind."))


def alert_filter(*, open_only: bool, zone: str | None, room: str | None, state: StateName | None, kind: str | None,
                 since: str | None, until: str | None, fired: bool, before: int | None) -> AlertFilter:
    """The filter of one request; `room` is another name for `zone` (the page's word)."""
    if zone is not None and room is not None and zone != room:
        raise HTTPException(422, f"room: {room!r} is not zone {zone!r}; give one of them")
    if kind is not None and kind not in known_kinds():
        raise HTTPException(422, f"kind: {kind!r} is not an alarm kind ({', '.join(sorted(known_kinds()))})")
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, f"until: {until!r} is not after since {since!r}")
    return AlertFilter(open_only=open_only, zone=zone if zone is not None else room, state=state, kind=kind,
                       since=start, until=end, fired_only=fired, before=before)
