"""What the HTTP API uses of the running daemon, and nothing more.

The routes are written against this protocol, not against `daemon.app.runtime.Daemon`: the API sits
below the app in the layering, and a reader sees here, in one place, every piece of state a request may
read and every action it may take. `Daemon` satisfies it structurally (no inheritance); so may a test
double."""

from __future__ import annotations

from typing import Protocol

from daemon.alarms.rules import Rules
from daemon.config.schema import AppConfig
from daemon.forwarding.forwarder import Forwarder
from daemon.ingest.live import LiveView
from daemon.ports.clock import Clock
from daemon.ports.stats import Stats
from daemon.storage.alerts import AlertRow
from daemon.storage.journal import Journal
from daemon.storage.reserve import Reserve


class Services(Protocol):
    """The daemon as the API sees it: state to read, the actions that write (each blocking)."""

    cfg: AppConfig
    clock: Clock
    stats: Stats
    started_at: float  # clock time of the start, moved along when NTP steps the clock
    journal: Journal
    live: LiveView  # the newest reading and online state of every sensor
    rules: Rules  # each zone's limits and mutes, as the alarm rules apply them
    reserve: Reserve  # the disk space kept back for alarms
    forwarders: list[Forwarder]  # one per uplink sink

    async def commit_pending(self) -> None:
        """Commit the readings still waiting for their commit window (`storage.commit_interval`), so that a
        figure computed next (a stay ended by a lot event, a report) counts every reading received so far."""
        ...

    def acknowledge(self, alert_id: int, who: str, comment: str | None, via: str) -> AlertRow | None:
        """Acknowledge a pending or firing alarm; None if it is neither."""
        ...

    def record_action(self, alert_id: int, who: str, kind: str, text: str) -> AlertRow:
        """A corrective action on an alarm; raises `daemon.alarms.followup.WorkflowError` if not possible now."""
        ...

    def close_alarm(self, alert_id: int, who: str, comment: str | None) -> AlertRow:
        """A manager closes an alarm; raises `daemon.alarms.followup.WorkflowError` if not possible now."""
        ...

    def mute(self, zone: str, seconds: float, reason: str, who: str) -> int:
        """No new alarms for `zone` for `seconds`; the mute's id."""
        ...

    def unmute(self, mute_id: int, who: str) -> bool:
        """End a mute early; False if no such mute is active."""
        ...
