"""The cursors repository: a consumer's last confirmed id, 0 until it confirms one."""

from __future__ import annotations

from pathlib import Path

from daemon.storage.journal import Journal


def test_cursors_start_at_zero_and_list(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    assert j.cursors.get("sink:a") == 0 and j.cursors.all() == {}
    j.cursors.set("sink:a", 5)
    j.cursors.set("sink:a", 7)
    j.cursors.set("events:a", 2)
    assert j.cursors.all() == {"sink:a": 7, "events:a": 2}
