"""Receipts: small notes drivers commit with their readings (`daemon/ports/sources.py` Receipt).

A ring per source: each commit adds one row per source (the bodies of its batches in that commit, joined in
order) and drops all but the newest `KEEP`, in the same transaction, so the table stays a few pages and nothing
is looked up per message. After a kill, the driver reads its newest receipts once and recognises a redelivered
batch from them.

One row per commit, not per batch: at a sensor rate every MQTT message is a batch of its own, and a commit holds
up to 750 of them at 500 sensors / 10 s (250 with the 5 s window of session 11). With a row per batch the ring
of 64 kept only the newest 64 of those, so a kill -9 between the commit and the PUBACKs would have stored the
broker's resent copies of the others again; and each commit wrote a row per message and deleted as many.
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.ports.sources import Receipt
from daemon.storage.db import Database, Tx

KEEP = 64
"""Receipts (commits) kept per source: more than the commits a driver has made and not yet acknowledged."""


class Receipts:
    """The `receipts` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def add(tx: Tx, receipts: Sequence[Receipt]) -> None:
        """Store `receipts` in the caller's transaction, one row per source (bodies joined in order: a body is a
        run of records, `Receipt`), and forget each source's older ones."""
        bodies: dict[str, list[bytes]] = {}
        for r in receipts:
            bodies.setdefault(r.source, []).append(r.body)
        for source, parts in bodies.items():
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            tx.execute("INSERT INTO receipts (source, body) VALUES (?, ?)", (source, body))
        for source in bodies:
            tx.execute("DELETE FROM receipts WHERE source = ? AND id <= (SELECT id FROM receipts WHERE source = ? "
                       "ORDER BY id DESC LIMIT 1 OFFSET ?)", (source, source, KEEP))

    def recent(self, source: str) -> list[bytes]:
        """The bodies of `source`'s newest receipts, oldest first."""
        return [bytes(row[0]) for row in
                self._db.read("SELECT body FROM receipts WHERE source = ? ORDER BY id", (source,))]
