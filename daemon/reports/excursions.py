"""Excursions: alarms that fired, with who was told, who acknowledged and what they did.

An excursion is an alarm that reached `firing` (a door opened for two minutes is cancelled
while pending and is not one). Its time out of range runs from `started` (the first reading
outside) to `resolved`, or to now while it is still open: that is `duration_minutes`. `minutes`
is the part inside the period asked for, so a one-day report never counts more than a day for
an alarm that has been open for three. `public()` strips every name and phone number for the
consumer trace page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from daemon.messages import render
from daemon.storage.alerts import AlertRow
from daemon.storage.journal import Journal

# Kinds about the goods' temperature and humidity; the others are about the equipment.
PRODUCT_KINDS = frozenset({"temp_high", "temp_low", "freeze", "rh_high", "rh_low", "band", "exposure", "rate"})


@dataclass
class Excursion:
    id: int
    zone: str
    sensor: str | None
    kind: str
    severity: str
    state: str
    start: float
    fired: float | None
    end: float | None
    minutes: float  # inside the period asked for
    value: float | None
    limit: float | None
    peak: float | None
    acked: float | None
    acked_by: str | None
    comment: str | None
    actions: list[str] = field(default_factory=list)
    told: list[dict[str, Any]] = field(default_factory=list)
    duration_minutes: float = 0.0  # the alarm's whole time out of range, from start to end (or now)
    corrective: list[dict[str, Any]] = field(default_factory=list)  # {ts, who, kind, text}, oldest first
    closed: float | None = None
    closed_by: str | None = None
    close_comment: str | None = None
    reescalated: list[float] = field(default_factory=list)

    @property
    def product(self) -> bool:
        return self.kind in PRODUCT_KINDS

    def json(self) -> dict[str, Any]:
        return asdict(self)

    def handling(self, lang: str) -> list[str]:
        """The 处理措施 cell: the acknowledgement's comment, each corrective action, the close, in order."""
        out = [self.comment] if self.comment else []
        out += [f"{render('action.' + c['kind'], lang)}: {c['text']} ({c['who']})" for c in self.corrective]
        out += self.actions
        if self.closed is not None:
            out.append(f"{render('state.closed', lang)} ({self.closed_by})" + (f": {self.close_comment}"
                                                                             if self.close_comment else ""))
        return out

    def public(self) -> dict[str, Any]:
        """What a buyer may see: times, values, whether and when it was acknowledged; no people."""
        return {"kind": self.kind, "start": self.start, "end": self.end, "minutes": round(self.minutes, 1),
                "peak": self.peak, "limit": self.limit, "acknowledged": self.acked is not None,
                "acked": self.acked, "resolved": self.end is not None}


# Audit entries whose comment is not a free-text action (the workflow's own steps are shown from their fields)
_NOT_ACTIONS = frozenset({"acknowledged", "pending", "firing", "escalated", "corrective_action", "closed",
                          "reescalated"})
_COLS = ("id, key, zone, sensor, kind, severity, state, started, fired, acked, acked_by, resolved, "
         "value, limit_value, peak, detail, closed, closed_by, ack_value, reescalated")


def excursions(journal: Journal, *, start: float, end: float, now: float, zone: str | None = None,
               product_only: bool = False, limit: int = 1000) -> list[Excursion]:
    """Fired alarms overlapping [start, end), oldest first, with their audit trail and messages."""
    sql = (f"SELECT {_COLS} FROM alerts WHERE fired IS NOT NULL AND started < ? "  # noqa: S608 - _COLS is a constant column list; values are bound
           "AND (resolved IS NULL OR resolved >= ?)")
    args: list[Any] = [end, start]
    if zone is not None:
        sql += " AND zone = ?"
        args.append(zone)
    sql += " ORDER BY started, id LIMIT ?"
    args.append(limit)
    out = []
    for row in journal.read(sql, args):
        a = AlertRow(*row)
        if product_only and a.kind not in PRODUCT_KINDS:
            continue
        events = journal.alerts.events(a.id)
        ack_comment = next((c for _, st, _, c in events if st == "acknowledged" and c), None)
        actions = [c for _, st, _, c in events if c and st not in _NOT_ACTIONS]
        told = [{"contact": c, "channel": n, "state": st, "sent_at": sent, "kind": k,
                 "delivered": None if dl is None else bool(dl)}
                for c, n, st, sent, k, dl in journal.read(
                    "SELECT contact, notifier, state, sent_at, msg_key, delivered FROM outbox WHERE alert_id = ? "
                    "ORDER BY id", (a.id,))]
        stop = a.resolved if a.resolved is not None else now
        out.append(Excursion(
            id=a.id, zone=a.zone, sensor=a.sensor, kind=a.kind, severity=a.severity, state=a.state, start=a.started,
            fired=a.fired, end=a.resolved, minutes=max(0.0, min(stop, end) - max(a.started, start)) / 60,
            duration_minutes=max(0.0, stop - a.started) / 60, value=a.value,
            limit=a.limit_value, peak=a.peak, acked=a.acked, acked_by=a.acked_by, comment=ack_comment,
            actions=actions, told=told, closed=a.closed, closed_by=a.closed_by,
            corrective=[{"ts": x.ts, "who": x.who, "kind": x.kind, "text": x.text}
                        for x in journal.alerts.actions(a.id)],
            close_comment=next((c for _, st, _, c in events if st == "closed"), None),
            reescalated=[ts for ts, st, _, _ in events if st == "reescalated"]))
    return out
