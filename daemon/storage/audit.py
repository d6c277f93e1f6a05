"""The audit log: who changed what and when (lots, clock steps), written in the change's own transaction."""

from __future__ import annotations

import json
from typing import Any

from daemon.storage.db import Database, Tx


class AuditLog:
    """The `audit_log` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def add(tx: Tx, ts: float, who: str, role: str, action: str, target: str, detail: dict[str, Any]) -> None:
        tx.execute("INSERT INTO audit_log (ts, who, role, action, target, detail) VALUES (?,?,?,?,?,?)",
                   (ts, who, role, action, target, json.dumps(detail, ensure_ascii=False, sort_keys=True)))

    def entries(self, target: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Newest first, all or those about `target` (a lot code, `clock`)."""
        sql, args = "SELECT id, ts, who, role, action, target, detail FROM audit_log", []
        if target is not None:
            sql += " WHERE target = ?"
            args.append(target)
        rows = self._db.read(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [{"id": i, "ts": ts, "who": w, "role": r, "action": a, "target": t, "detail": json.loads(d or "{}")}
                for i, ts, w, r, a, t, d in rows]
