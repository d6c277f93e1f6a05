"""SQL stays in storage: no other room of the core runs a statement or imports sqlite3."""

from __future__ import annotations

import re
from pathlib import Path

DAEMON = Path(__file__).resolve().parents[3] / "daemon"
SQL = re.compile(r"\.execute\(|^\s*import sqlite3|^\s*from sqlite3 ", re.M)


def test_no_sql_outside_storage() -> None:
    offenders = [f"{p.relative_to(DAEMON)}:{text[:m.start()].count(chr(10)) + 1}"
                 for p in sorted(DAEMON.rglob("*.py")) if p.parent.name != "storage"
                 for text in [p.read_text(encoding="utf-8")] for m in SQL.finditer(text)]
    assert offenders == []
