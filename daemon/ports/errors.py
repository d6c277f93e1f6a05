"""The daemon's exception tree; every message names its source.

ColdChainError
 ├── ConfigError            a config file is wrong (file:line: key path: message)
 ├── StorageError           the journal refused a read or write (the sqlite3 error is its __cause__)
 │    ├── JournalFull          database or disk is full (SQLITE_FULL, ENOSPC)
 │    ├── JournalLocked        another writer held the file past the busy timeout
 │    ├── JournalCorrupt       the file is damaged or not a database
 │    └── ReadingsHeldBack     the disk is full: readings wait so the disk reserve serves alarms and SMS
 └── DriverError            a driver failed; `source` names device, port or endpoint
      ├── SensorError
      │    ├── SensorTimeout        we asked; nothing (or garbage) came back
      │    └── SensorReportedError  the device answered with an error code
      ├── SinkError                 a forwarder's server refused or is unreachable
      └── NotifierError             a message could not be handed to its channel
"""

from __future__ import annotations


class ColdChainError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(ColdChainError):
    """One or more config problems, each already formatted as `file:line: key: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StorageError(ColdChainError):
    """The journal refused a read or write. Raised at the storage boundary (`daemon/storage/db.py`) in place
    of the driver's own error, which stays as `__cause__`; nothing above storage sees sqlite3."""


class JournalFull(StorageError):
    """SQLite's "database or disk is full" (or ENOSPC): the disk reserve gives its space back."""


class JournalLocked(StorageError):
    """Another process held the journal past the busy timeout."""


class JournalCorrupt(StorageError):
    """The journal file is damaged or not an SQLite database."""


class ReadingsHeldBack(StorageError):
    """The disk is full and the disk reserve is released: readings are refused (not acknowledged) so that its
    last half stays for alarms, acknowledgements and SMS (`daemon/storage/reserve.py`)."""


class DriverError(ColdChainError):
    """A driver failed; `source` names the device, port or endpoint."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class SensorError(DriverError):
    """A sensor could not be read this time; the pipeline records a gap and goes on."""


class SensorTimeout(SensorError):
    """We asked; nothing (or garbage) came back in time."""


class SensorReportedError(SensorError):
    """The transmitter answered with an exception code."""


class SinkError(DriverError):
    """A sink refused a batch or could not be reached; the forwarder retries."""

    def __init__(self, source: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(source, message)
        self.retryable = retryable


class NotifierError(DriverError):
    """A notifier could not hand a message to its channel; the outbox retries or falls back.

    `retryable=False`: the same channel will refuse again (illegal number, unapproved template):
    go to the next channel at once. `maybe_sent=True`: the request may have reached the
    provider (read timeout): never resend on this channel, or the person gets it twice.
    """

    def __init__(self, source: str, message: str, *, retryable: bool = True, maybe_sent: bool = False) -> None:
        super().__init__(source, message)
        self.retryable = retryable
        self.maybe_sent = maybe_sent
