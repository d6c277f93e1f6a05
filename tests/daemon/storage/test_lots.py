"""The lots and audit-log repositories: stays of a lot, searches, and who changed what."""

from __future__ import annotations

from pathlib import Path

from daemon.storage.journal import Journal


def test_stays_open_close_and_search(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    lots = j.lots
    with j.transaction() as tx:
        assert not lots.exists(tx, "L-001")
        lots.insert(tx, "L-001", "kiwifruit", 120.0, "kg", "Zhouzhi", 10.0, "zhang")
        lots.start_stay(tx, "L-001", "z1", 10.0, "zhang")
        lots.insert(tx, "L-002", "apple", None, None, None, 20.0, "wang")
        lots.start_stay(tx, "L-002", "z2", 20.0, "wang")
        assert lots.exists(tx, "L-001") and lots.open_stay(tx, "L-001") is not None
    with j.transaction() as tx:
        stay = lots.open_stay(tx, "L-001")
        assert stay is not None and stay[1] == "z1"
        lots.end_stay(tx, stay[0], 30.0, "liu")
        lots.start_stay(tx, "L-001", "z2", 30.0, "liu")
    with j.transaction() as tx:
        stay = lots.open_stay(tx, "L-002")
        assert stay is not None
        lots.end_stay(tx, stay[0], 40.0, "wang")
        lots.check_out(tx, "L-002", 40.0)
        assert lots.open_stay(tx, "L-002") is None
    assert lots.get("L-001") == ("L-001", "kiwifruit", 120.0, "kg", "Zhouzhi", 10.0, "zhang", None)
    assert lots.get("nope") is None
    assert lots.stays("L-001") == [("z1", 10.0, 30.0, "zhang", "liu"), ("z2", 30.0, None, "liu", None)]
    assert [f[0] for f in lots.search()] == ["L-002", "L-001"]  # newest first
    assert [f[0] for f in lots.search(in_storage=True)] == ["L-001"]
    assert [f[0] for f in lots.search(in_storage=False)] == ["L-002"]
    assert [(f[0], f[7]) for f in lots.search(zone="z2")] == [("L-001", "z2")]
    assert lots.in_storage() == 1


def test_audit_entries_newest_first_by_target(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    with j.transaction() as tx:
        j.audit.add(tx, 1.0, "zhang", "operator", "lot.check_in", "L-001", {"zone": "z1", "origin": "周至"})
        j.audit.add(tx, 2.0, "coldchain", "system", "clock.step", "clock", {"step_s": 3600.0})
    assert [e["action"] for e in j.audit.entries()] == ["clock.step", "lot.check_in"]
    (entry,) = j.audit.entries("L-001", limit=5)
    assert entry["who"] == "zhang" and entry["role"] == "operator" and entry["detail"] == {"zone": "z1",
                                                                                           "origin": "周至"}
    assert j.audit.entries(limit=1)[0]["target"] == "clock"

