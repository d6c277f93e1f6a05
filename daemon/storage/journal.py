"""The journal: one SQLite file of readings, forward cursors, alarms, messages, lots and the audit log.

`Journal` opens the file (`db.py`: connections, migrations, transactions) and owns one repository
per table group; callers use those (`journal.readings.append(...)`, `journal.alerts.find(...)`):

- `readings`  readings and their series (`readings.py`), the sinks' `JournalReader`
- `cursors`   forwarders' confirmed positions (`cursors.py`)
- `alerts`    alarms and their audit entries (`alerts.py`); `alert_query` the alarm list's filters and pages
  (`alert_query.py`)
- `outbox`    messages out and replies in (`outbox.py`)
- `mutes`     planned silences (`mutes.py`)
- `lots`      lots and their stays (`lots.py`); `audit` who changed what (`audit.py`); `precool` runs (`precool.py`)
- `lot_events` lot changes for EPCIS and the uplink, loggers' transit readings (`lot_events.py`)
- `receipts`  what drivers commit with their readings to know a redelivery after a kill (`receipts.py`)

Rollups and retention (`rollups.py`, `retention.py`) work on the file as a whole. A write that spans
groups takes one `transaction()` and hands it to each repository's write (an alarm transition, its
audit entry and its outbox rows commit together, before any message is sent).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from daemon.ports.model import Reading
from daemon.ports.sources import Receipt
from daemon.storage.alert_query import AlertQuery
from daemon.storage.alerts import Alerts
from daemon.storage.audit import AuditLog
from daemon.storage.cursors import Cursors
from daemon.storage.db import Database, Tx
from daemon.storage.lot_events import LotEvents
from daemon.storage.lots import LotStays
from daemon.storage.mutes import Mutes
from daemon.storage.outbox import Outbox
from daemon.storage.precool import PrecoolRuns
from daemon.storage.readings import Readings
from daemon.storage.receipts import Receipts
from daemon.storage.users import Users


class Journal:
    """The journal file and its repositories; thread-safe (one writer connection, a few readers lent to the reads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = Database(self.path)
        self.readings = Readings(self.db)
        self.cursors = Cursors(self.db)
        self.alerts = Alerts(self.db)
        self.alert_query = AlertQuery(self.db)
        self.outbox = Outbox(self.db)
        self.mutes = Mutes(self.db)
        self.lots = LotStays(self.db)
        self.lot_events = LotEvents(self.db)
        self.audit = AuditLog(self.db)
        self.precool = PrecoolRuns(self.db)
        self.receipts = Receipts(self.db)
        self.users = Users(self.db)  # sign-in: users and sessions

    def use_clock(self, now: Callable[[], float]) -> None:
        """Times the storage writes itself (a message's sent_at, a mute's created, a cursor's updated) come from
        `now`, the daemon's Clock: with a simulated clock (the demo) sent_at came before created."""
        self.cursors.now = self.outbox.now = self.mutes.now = now

    @property
    def on_full(self) -> Callable[[], None] | None:
        """Called when a write fails because the disk is full (the disk reserve gives its space back)."""
        return self.db.on_full

    @on_full.setter
    def on_full(self, fn: Callable[[], None] | None) -> None:
        self.db.on_full = fn

    def transaction(self) -> AbstractContextManager[Tx]:
        """One atomic write across repositories: everything inside commits together or not at all."""
        return self.db.transaction()

    def commit(self, readings: Sequence[Reading], receipts: Sequence[Receipt] = ()) -> list[Reading]:
        """Readings and the receipts of the drivers that sent them, in one transaction (the pipeline's write)."""
        if not readings and not receipts:
            return []
        if self.readings.gate is not None:
            self.readings.gate()
        try:
            with self.transaction() as tx:
                stored = self.readings.append_tx(tx, readings)
                self.receipts.add(tx, receipts)
        except BaseException:
            self.readings.rolled_back()
            raise
        return stored

    def snapshot(self) -> AbstractContextManager[None]:
        """`read` calls inside see one state of the journal (one read transaction on this thread's reader)."""
        return self.db.snapshot()

    def read(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only query on this thread's reader connection (for reports and history over many tables)."""
        return self.db.read(sql, args)

    def quick_check(self) -> str:
        """SQLite's own consistency check; 'ok' when the file is sound."""
        return self.db.quick_check()

    def journal_mode(self) -> str:
        return self.db.journal_mode()

    def page_size(self) -> int:
        return self.db.page_size()

    @property
    def run_mark(self) -> Path:
        """Exists while a daemon uses the journal; left behind by a power cut, SIGKILL or crash."""
        return self.path.with_name(self.path.name + ".running")

    def begin_run(self) -> str | None:
        """Mark the journal in use. After an unclean stop, returns `quick_check()`'s answer; else None."""
        result = self.quick_check() if self.run_mark.exists() else None
        self.run_mark.write_text(f"{os.getpid()}\n", encoding="utf-8")
        return result

    def end_run(self) -> None:
        """The daemon stopped cleanly: everything it acknowledged is committed."""
        self.run_mark.unlink(missing_ok=True)

    def close(self) -> None:
        self.db.close()

    def shift_timers(self, step: float, now: float) -> None:
        """The wall clock stepped by `step`: escalation and retry times, and mutes still in force at `now`
        (the old clock's time), move with it; stored history (readings, alarm times, audit) does not. The step
        itself goes to the audit log (`GET /api/v1/audit?target=clock`), with the last reading stamped before it,
        so whoever reads the history knows which stamps came from the old clock."""
        with self.transaction() as tx:
            last = self.readings.last_id(tx)
            self.audit.add(tx, now + step, "coldchain", "system", "clock.step", "clock",
                           {"step_s": round(step, 3), "last_reading_before": last})
            self.alerts.shift_timers(tx, step)
            self.outbox.shift_timers(tx, step)
            self.mutes.shift_timers(tx, step, now)

