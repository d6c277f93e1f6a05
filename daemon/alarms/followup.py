"""After the acknowledgement (HACCP / GB 31605 corrective action): what was done to the product, the manager's
close, and when an acknowledged alarm that keeps going must page again.

The order a reviewer expects: firing -> acknowledged (with a comment: what is being done) -> one or more corrective
actions (moved / discarded / kept after check / other, with free text) -> closed by a manager once the condition is
over. Each step is an `alert_events` entry with who and when, in the same transaction as the change.

An acknowledgement stops the paging, so a room that keeps warming would look calm: `reescalation_reason` says when
it fires again (`alarms.reescalate_after`, `alarms.reescalate_rise`) and `AlertManager.reescalate` pages from step 0.
"""

from __future__ import annotations

from daemon.config.schema import AlarmWorkflowConfig
from daemon.storage.alerts import AlertRow, Alerts
from daemon.storage.db import Tx
from daemon.storage.journal import Journal

ACTION_KINDS = ("moved", "discarded", "kept_after_check", "other")
# Kinds where a higher value is worse, and where a lower one is; the others re-escalate on time only
_HIGH_KINDS = frozenset({"temp_high", "rh_high", "rate"})
_LOW_KINDS = frozenset({"temp_low", "freeze", "rh_low"})


class WorkflowError(ValueError):
    """A follow-up step that cannot be taken now; `status` is the HTTP status the API answers with."""

    status = 409


class NoSuchAlarm(WorkflowError):
    status = 404


class CommentRequired(WorkflowError):
    status = 422


def quantity_of(kind: str) -> str | None:
    """The quantity an alarm kind is about (None: a device alarm)."""
    if kind.startswith("rh_"):
        return "humidity"
    return "temperature" if kind in _HIGH_KINDS | _LOW_KINDS | {"band", "exposure"} else None


def worse_by(kind: str, then: float | None, now: float | None) -> float | None:
    """How much further out of range `now` is than `then` (negative: better); None when not comparable."""
    if then is None or now is None:
        return None
    if kind in _HIGH_KINDS:
        return now - then
    if kind in _LOW_KINDS:
        return then - now
    return None


def reescalation_reason(cfg: AlarmWorkflowConfig, row: AlertRow, now: float, current: float | None) -> str | None:
    """Why an acknowledged alarm must page again now (a detail key, language-neutral), or None."""
    if row.state != "acknowledged" or row.acked is None:
        return None
    worse = worse_by(row.kind, row.ack_value, current)
    if cfg.reescalate_rise is not None and worse is not None and worse >= cfg.reescalate_rise:
        return f"reescalate.rise|then={row.ack_value:.1f}|now={current:.1f}"
    if cfg.reescalate_after is not None and now - row.acked >= cfg.reescalate_after:
        return f"reescalate.time|minutes={round((now - row.acked) / 60)}"
    return None


def record_action(journal: Journal, now: float, alert_id: int, who: str, kind: str, text: str) -> AlertRow:
    """Store one corrective action; allowed once the alarm has been acknowledged, or after it fired and ended."""
    if kind not in ACTION_KINDS:
        raise CommentRequired(f"unknown corrective action {kind!r}; one of {', '.join(ACTION_KINDS)}")
    if not text.strip():
        raise CommentRequired("a corrective action needs a description of what was done")
    alerts = journal.alerts
    with journal.transaction() as tx:
        row = _existing(tx, alerts, alert_id)
        if row.closed is not None:
            raise WorkflowError(f"alarm {alert_id} is closed")
        if row.acked is None and not (row.state == "resolved" and row.fired is not None):
            raise WorkflowError(f"alarm {alert_id} is {row.state}; acknowledge it before recording an action")
        alerts.add_action(tx, alert_id, now, who, kind, text.strip())
        alerts.add_event(tx, alert_id, now, "corrective_action", f"{kind}: {text.strip()}", who)
        return alerts.load(tx, alert_id)


def close(journal: Journal, now: float, alert_id: int, who: str, comment: str | None) -> AlertRow:
    """A manager closes an alarm whose condition is over and whose corrective action is on record."""
    alerts = journal.alerts
    with journal.transaction() as tx:
        row = _existing(tx, alerts, alert_id)
        if row.closed is not None:
            raise WorkflowError(f"alarm {alert_id} is already closed")
        if row.state != "resolved":
            raise WorkflowError(f"alarm {alert_id} is {row.state}; it can be closed once it is back in range")
        if alerts.count_actions(tx, alert_id) == 0:
            raise WorkflowError(f"alarm {alert_id} has no corrective action on record")
        alerts.close(tx, alert_id, now, who)
        alerts.add_event(tx, alert_id, now, "closed", (comment or "").strip() or None, who)
        return alerts.load(tx, alert_id)


def _existing(tx: Tx, alerts: Alerts, alert_id: int) -> AlertRow:
    state = alerts.state(tx, alert_id)
    if state is None:
        raise NoSuchAlarm(f"no alarm {alert_id}")
    return alerts.load(tx, alert_id)
