"""The mutes repository: planned silences, ended early at most once, moved by a clock step while in force."""

from __future__ import annotations

from pathlib import Path

from daemon.storage.journal import Journal


def test_add_find_end_and_shift(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    one = j.mutes.add("z1", 100.0, 200.0, "defrost", "zhang")
    two = j.mutes.add("z2", 100.0, 1000.0, "cleaning", "wang")
    assert [m[0] for m in j.mutes.find()] == [one, two]
    assert j.mutes.find(active_at=300.0) == [(two, "z2", 100.0, 1000.0, "cleaning", "wang")]
    assert j.mutes.end(two, 500.0) and not j.mutes.end(two, 600.0)  # already over at 600
    assert j.mutes.find(active_at=500.0) == []
    three = j.mutes.add("z1", 0.0, 400.0, "delivery", "liu")
    with j.transaction() as tx:
        j.mutes.shift_timers(tx, 50.0, 300.0)  # only mutes still in force at 300 move
    assert [(m[0], m[2], m[3]) for m in j.mutes.find()] == [(one, 100.0, 200.0), (two, 150.0, 550.0),
                                                            (three, 50.0, 450.0)]
