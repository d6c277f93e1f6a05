"""Times the storage stamps itself come from the daemon's Clock (the demo's simulated one included)."""

from __future__ import annotations

from pathlib import Path

from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from tests.conftest import make_config

SIM = 1_000_000_000.0  # 2001: far from the wall clock


def test_sent_at_mute_created_and_cursor_updated_follow_the_clock(tmp_path: Path) -> None:
    clock = ManualClock(SIM)
    d = Daemon(make_config(tmp_path), clock=clock)
    j = d.journal
    try:
        with j.transaction() as tx:
            j.outbox.enqueue(tx, None, clock.now(), "zhang", "+8613800138000", "out", "zh-CN", "x", None, None, None)
        (oid,) = [r[0] for r in j.read("SELECT id FROM outbox")]
        clock.advance(5)
        assert j.outbox.claim(oid)
        j.outbox.finish(oid, "sent", None, "ref1", None)
        clock.advance(5)
        d.mute("z1", 600, "cleaning", "zhang")
        clock.advance(5)
        j.cursors.set("sink:hub", 3)
        (created, sent_at), = j.read("SELECT created, sent_at FROM outbox")
        (mute_created,), = j.read("SELECT created FROM mutes")
        (updated,), = j.read("SELECT updated FROM cursors WHERE name = 'sink:hub'")
    finally:
        j.close()
    assert (created, sent_at, mute_created, updated) == (SIM, SIM + 5, SIM + 10, SIM + 15)
