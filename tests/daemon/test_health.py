"""Box-health probes read real kernel and filesystem state."""

from __future__ import annotations

from pathlib import Path

from daemon.ports.clock import clock_synchronised
from daemon.storage import disk as health


def test_free_mb_of_missing_path_uses_parent(tmp_path: Path) -> None:
    assert health.free_mb(tmp_path / "not" / "yet" / "journal.db") > 0


def test_clock_state_is_known_on_linux() -> None:
    assert clock_synchronised() in (True, False)
