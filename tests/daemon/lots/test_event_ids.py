"""EPCIS eventIDs are kept with the lot events (migration 13): a journal restored from an older backup writes new
events under new ids, so the hub (which drops an eventID it has seen) does not lose them; ids of events written
before the migration stay what they were sent as. Alarms the same (the hub keys their changes by (site, id,
state))."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

from daemon.lots.epcis import Epcis
from daemon.lots.event_ids import legacy_uid
from daemon.lots.store import Lots, Who
from daemon.storage.alerts import NewAlert
from daemon.storage.journal import Journal
from daemon.storage.schema import SCHEMA
from tests.conftest import make_config
from tests.daemon.lots.test_transfers import T0, TWO

LI = Who("li", "staff")
KEPT = next(i for i, ddl in enumerate(SCHEMA) if "ADD COLUMN uid" in ddl and "lot_events" in ddl)


def ids(lots: Lots, after: int = 0) -> list[str]:
    ep = Epcis(lots)
    return [ep.event(e, T0 + 86_400)["eventID"] for e in lots.journal.lot_events.after(after, 1000)]


def test_a_restored_journal_does_not_repeat_ids_the_hub_has_seen(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, TWO)
    path = tmp_path / "j.db"
    lots = Lots(Journal(path), cfg)
    lots.check_in("A-1", "mandarin", "z1", T0 + 600, LI, quantity=100, unit="kg")
    lots.journal.close()
    shutil.copy(path, tmp_path / "backup.db")  # last night's backup: one event
    lots = Lots(Journal(path), cfg)
    lots.move("A-1", "z2", T0 + 1200, LI)
    lots.check_in("A-2", "mandarin", "z1", T0 + 1800, LI)
    seen = set(ids(lots))  # what the uplink sent to the hub: three events
    lots.journal.close()
    shutil.copy(tmp_path / "backup.db", path)  # the card died; the backup comes back
    lots = Lots(Journal(path), cfg)
    assert set(ids(lots)) <= seen  # the event from before the backup keeps its id
    lots.check_in("A-3", "mandarin", "z1", T0 + 2400, LI)
    lots.move("A-1", "z2", T0 + 3000, LI)
    new = ids(lots, after=1)
    assert [e.id for e in lots.journal.lot_events.after(1, 10)] == [2, 3]  # the same journal ids as before
    assert len(new) == 2 and not set(new) & seen  # under ids the hub has not seen, so it keeps them


def test_events_from_before_the_migration_keep_the_ids_they_were_sent_as(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for n, ddl in enumerate(SCHEMA[:KEPT], start=1):
        db.executescript(ddl)
        db.execute(f"PRAGMA user_version={n}")
    db.execute("INSERT INTO lots (code, commodity, created, created_by) VALUES ('OLD-1', 'mandarin', ?, 'li')", (T0,))
    db.executemany("INSERT INTO lot_events (ts, kind, lot, zone, who, recorded) VALUES (?,?,?,?,?,?)",
                   [(T0, "commission", "OLD-1", "z1", "li", T0), (T0 + 60, "move", "OLD-1", "z2", "li", T0 + 60)])
    db.close()
    lots = Lots(Journal(path), make_config(tmp_path, TWO))
    assert [e.uid for e in lots.journal.lot_events.after(0, 10)] == [legacy_uid("t1", 1), legacy_uid("t1", 2)]
    assert ids(lots) == [f"urn:uuid:{legacy_uid('t1', 1)}", f"urn:uuid:{legacy_uid('t1', 2)}"]
    lots.check_in("NEW-1", "mandarin", "z1", T0 + 120, LI)
    assert lots.journal.lot_events.after(2, 10)[0].uid != legacy_uid("t1", 3)
    lots.journal.close()
    again = Lots(Journal(path), make_config(tmp_path, TWO))  # a second start changes nothing
    assert ids(again)[:2] == [f"urn:uuid:{legacy_uid('t1', 1)}", f"urn:uuid:{legacy_uid('t1', 2)}"]


def raise_alarm(j: Journal, ts: float) -> str:
    """A new alarm with its firing entry; the id the uplink sends for it."""
    with j.transaction() as tx:
        aid = j.alerts.insert(tx, NewAlert(f"z1/s1/temp_high/{ts}", "z1", "s1", "temp_high", "warning", ts, 9.0, 8.0,
                                           9.0, None), "firing")
        j.alerts.add_event(tx, aid, ts, "firing")
    return next(str(e.uid) for e in j.alerts.events_after(0, 100, "t1") if e.alert_id == aid)


def test_alarms_keep_their_id_across_a_restore(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    db = sqlite3.connect(path, isolation_level=None)
    for n, ddl in enumerate(SCHEMA[:KEPT], start=1):
        db.executescript(ddl)
        db.execute(f"PRAGMA user_version={n}")
    db.execute("INSERT INTO alerts (key, zone, kind, severity, state, started) "
               "VALUES ('z1/s1/temp_high', 'z1', 'temp_high', 'warning', 'resolved', ?)", (T0,))
    db.execute("INSERT INTO alert_events (alert_id, ts, state, who) VALUES (1, ?, 'firing', 'system')", (T0,))
    db.close()
    j = Journal(path)
    assert [e.uid for e in j.alerts.events_after(0, 10, "t1")] == ["1"]  # the id it was sent under before
    j.close()
    shutil.copy(path, tmp_path / "backup.db")
    j = Journal(path)
    seen = {raise_alarm(j, T0 + 60), raise_alarm(j, T0 + 120)}
    j.close()
    shutil.copy(tmp_path / "backup.db", path)
    j = Journal(path)
    again = raise_alarm(j, T0 + 180)  # journal id 2 again, as the first alarm after the backup had
    assert again not in seen and len(seen) == 2 and uuid.UUID(again).version == 4
