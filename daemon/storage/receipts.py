"""Receipts: small notes drivers commit with their readings (`daemon/ports/sources.py` Receipt).

A ring per source: each commit adds one row per batch and drops all but the newest `KEEP`, in the
same transaction, so the table stays a few pages and nothing is looked up per message. After a
kill, the driver reads its newest receipts once and recognises a redelivered batch from them.
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.ports.sources import Receipt
from daemon.storage.db import Database, Tx

KEEP = 64
"""Receipts kept per source: more than the batches a driver has committed and not yet acknowledged."""


class Receipts:
    """The `receipts` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def add(tx: Tx, receipts: Sequence[Receipt]) -> None:
        """Store `receipts` in the caller's transaction and forget each source's older ones."""
        for r in receipts:
            tx.execute("INSERT INTO receipts (source, body) VALUES (?, ?)", (r.source, r.body))
        for source in {r.source for r in receipts}:
            tx.execute("DELETE FROM receipts WHERE source = ? AND id <= (SELECT id FROM receipts WHERE source = ? "
                       "ORDER BY id DESC LIMIT 1 OFFSET ?)", (source, source, KEEP))

    def recent(self, source: str) -> list[bytes]:
        """The bodies of `source`'s newest receipts, oldest first."""
        return [bytes(row[0]) for row in
                self._db.read("SELECT body FROM receipts WHERE source = ? ORDER BY id", (source,))]
