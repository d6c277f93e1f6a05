"""A lot entered after the fact: check-in, move and check-out at a stated earlier time, audited with who, when
it was entered and when it happened; the record then covers the real stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.lots.store import LotConflict, LotError, Lots, Who
from daemon.ports.model import Quantity, Reading
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL, make_config

T0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai
TWO = MINIMAL.replace("commodity: mandarin}\n",
                      "commodity: mandarin}\n  - {id: z2, name: 2号库, name_en: Room 2, commodity: mandarin}\n"
                      ).replace("sensors:\n", "sensors:\n  - {id: s2, zone: z2, type: simulated, setpoint: 6.5}\n")
ZHANG = Who("zhang", "staff")


@pytest.fixture
def lots(tmp_path: Path) -> Lots:
    cfg = make_config(tmp_path, TWO)
    j = Journal(tmp_path / "l.db")
    # z1 at 9.5 °C (too warm for mandarin) from 08:00 to 09:00, 6 °C otherwise; readings every minute
    j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 9.5 if 480 <= i < 540 else 6.0, T0 + i * 60)
                       for i in range(720)])
    return Lots(j, cfg)


def test_backdated_check_in_covers_the_real_stay(lots: Lots) -> None:
    now = T0 + 10 * 3600  # entered at 10:00 for a lot that came in at 07:00
    lot = lots.check_in("CQ-0001", "mandarin", "z1", now, ZHANG, at=T0 + 7 * 3600)
    assert lot["created"] == T0 + 7 * 3600 and lot["stays"][0]["start"] == T0 + 7 * 3600
    rec = lots.record("CQ-0001", now)
    assert rec["hours"] == 3.0 and rec["temperature"]["minutes_above"] == 60  # the 08:00-09:00 warm spell
    (entry,) = lots.journal.audit.entries("CQ-0001")
    assert entry["ts"] == now and entry["who"] == "zhang"
    assert entry["detail"]["at"] == T0 + 7 * 3600 and entry["detail"]["backdated_s"] == 3 * 3600


def test_backdated_move_and_check_out_split_the_stays_where_they_happened(lots: Lots) -> None:
    lots.check_in("CQ-0002", "mandarin", "z1", T0 + 6 * 3600, ZHANG)
    lots.move("CQ-0002", "z2", T0 + 11 * 3600, ZHANG, at=T0 + 8.5 * 3600)
    lot = lots.check_out("CQ-0002", T0 + 11.5 * 3600, ZHANG, at=T0 + 10 * 3600)
    assert [(s["zone"], s["start"], s["end"]) for s in lot["stays"]] == [
        ("z1", T0 + 6 * 3600, T0 + 8.5 * 3600), ("z2", T0 + 8.5 * 3600, T0 + 10 * 3600)]
    assert lot["checked_out"] == T0 + 10 * 3600
    rec = lots.record("CQ-0002", T0 + 12 * 3600)
    assert rec["stays"][0]["temperature"]["minutes_above"] == 30  # 08:00-08:30 in z1, before the move
    moves = [e for e in lots.journal.audit.entries("CQ-0002") if e["action"] == "lot.move"]
    assert moves[0]["ts"] == T0 + 11 * 3600 and moves[0]["detail"]["at"] == T0 + 8.5 * 3600


def test_a_change_cannot_happen_in_the_future_or_before_the_previous_event(lots: Lots) -> None:
    now = T0 + 10 * 3600
    with pytest.raises(LotError, match="future"):
        lots.check_in("CQ-0003", "mandarin", "z1", now, ZHANG, at=now + 3600)
    with pytest.raises(LotError, match="real time"):
        lots.check_in("CQ-0003", "mandarin", "z1", now, ZHANG, at=float("nan"))
    lots.check_in("CQ-0003", "mandarin", "z1", now, ZHANG, at=now - 3600)
    with pytest.raises(LotConflict, match="previous"):
        lots.move("CQ-0003", "z2", now, ZHANG, at=now - 7200)  # before it was checked in
    with pytest.raises(LotConflict, match="previous"):
        lots.check_out("CQ-0003", now, ZHANG, at=now - 3600)  # the same second it came in: a stay of nothing
    lots.check_in("CQ-0004", "mandarin", "z1", now, ZHANG, at=now + 30)  # a browser a little ahead: now
    assert lots.get("CQ-0004")["created"] == now
    assert lots.journal.audit.entries("CQ-0004")[0]["detail"] == {
        "zone": "z1", "commodity": "mandarin", "quantity": None, "unit": None, "origin": None}
