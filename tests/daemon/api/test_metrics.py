"""/metrics text: journal lag per forwarder cursor, counters with HELP/TYPE, alarms by state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from daemon.api.metrics import _db_facts, render_metrics
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from tests.conftest import make_config


def test_lag_per_sink_and_counters(tmp_path: Path) -> None:
    d = Daemon(make_config(tmp_path), clock=ManualClock(1e9))
    try:
        d.journal.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 6.0 + i / 10, 1e9 + i) for i in range(10)])
        d.forwarders = [SimpleNamespace(cursor_name="sink:hub"), SimpleNamespace(cursor_name="sink:new")]  # type: ignore[assignment]
        d.journal.cursors.set("sink:hub", 7)
        d.journal.cursors.set("events:hub", 0)  # the same sink's alarm-event cursor: not a reading lag
        d.stats.inc("messages_sent", 2)
        d.stats.inc("messages_failed")
        text = render_metrics(d, _db_facts(d))
    finally:
        d.journal.close()
    lines = text.splitlines()
    assert 'coldchain_journal_lag_readings{sink="sink:hub"} 3' in lines
    assert 'coldchain_journal_lag_readings{sink="sink:new"} 10' in lines  # no cursor yet: everything waits
    assert [ln for ln in lines if ln.startswith("coldchain_journal_lag_readings")] == [
        'coldchain_journal_lag_readings{sink="sink:hub"} 3', 'coldchain_journal_lag_readings{sink="sink:new"} 10']
    assert 'coldchain_journal_lag_events{sink="events:hub"} 0' in lines  # no alarm yet
    assert "coldchain_rollup_lag_readings 10" in lines  # no roll yet
    assert "coldchain_messages_sent_total 2" in lines and "coldchain_messages_failed_total 1" in lines
    assert "# TYPE coldchain_readings_stored_total counter" in lines
    assert 'coldchain_alarms{state="firing"} 0' in lines and "coldchain_lots_in_storage 0" in lines
    for line in lines:  # every sample line is `name{labels} value`
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            float(value)
            assert name.startswith("coldchain_")
