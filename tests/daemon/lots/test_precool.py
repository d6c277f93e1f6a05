"""Precooling runs on a journal: started by a lot's check-in, figures from the readings stored, the too-slow alarm
through the alert manager (stored, SMS in the outbox), the end at 7/8, and the run on the lot's record."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from daemon.alarms.lifecycle import AlertManager
from daemon.config.catalog import precool_targets
from daemon.lots.precool import PrecoolConflict, PrecoolError, Precooling
from daemon.lots.store import Lots, Who, public_record
from daemon.ports.clock import Clock
from daemon.ports.errors import ConfigError
from daemon.ports.model import Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from tests.conftest import make_config

T0 = 1_763_568_000.0
PRECOOL = """
site: {id: t1, name: 测试冷库}
storage: {journal: journal.db}
zones:
  - {id: pre, name: 预冷间, name_en: Precooling room, precool: {pulp: [pulp1], supply_air: [air1]}}
  - {id: z1, name: 1号库, name_en: Room 1, commodity: strawberry}
sensors:
  - {id: pulp1, zone: pre, type: simulated, setpoint: 20}
  - {id: air1, zone: pre, type: simulated, setpoint: 0.5}
  - {id: s1, zone: z1, type: simulated, setpoint: 0.5}
notifiers:
  - {id: out, type: console}
contacts:
  - {id: zhang, name: 张师傅, phone: "+8613800138000"}
escalation: {steps: [{contacts: [zhang], notifiers: [out]}]}
api: {enabled: false}
"""
ZHANG = Who("zhang", "staff")


def cooling(journal: Journal, z_s: float, minutes: int, start: float = T0, t0: float = 22.0, air: float = 0.5) -> None:
    """A Newton curve with half-cooling time `z_s`, a reading a minute of pulp and air."""
    k = math.log(2) / z_s
    journal.readings.append(
        [Reading("t1", "pre", "pulp1", Quantity.TEMPERATURE, air + (t0 - air) * math.exp(-k * i * 60), start + i * 60)
         for i in range(minutes + 1)]
        + [Reading("t1", "pre", "air1", Quantity.TEMPERATURE, air, start + i * 60) for i in range(minutes + 1)])


@pytest.fixture
def lots(tmp_path: Path) -> Lots:
    return Lots(Journal(tmp_path / "p.db"), make_config(tmp_path, PRECOOL))


def test_the_strawberry_target_has_its_source_and_says_unverified() -> None:
    t = precool_targets()["strawberry"]
    assert t.seven_eighths_h == 2 and t.unverified and "21567" in t.source


def test_a_check_in_starts_a_run_and_a_fast_curve_ends_it_at_seven_eighths(lots: Lots) -> None:
    lots.check_in("SB-001", "strawberry", "pre", T0, ZHANG)
    (run,) = lots.journal.precool.find(open_only=True)
    assert (run.lot, run.commodity, run.how, run.target_s) == ("SB-001", "strawberry", "check_in", 7200.0)
    pc = lots.precool
    cooling(lots.journal, 20 * 60, 40)  # half-cooling 20 min: 7/8 at 60 min, well inside 2 h
    assert pc.evaluate(T0 + 40 * 60) == []  # on its way, predicted in time: no alarm
    view = pc.view(run.id, T0 + 40 * 60)
    assert view["figures"]["state"] == "predicting" and not view["figures"]["too_slow"]
    assert view["figures"]["predicted_seven_eighths_s"] == pytest.approx(3600, rel=0.05)
    cooling(lots.journal, 20 * 60, 70)
    (ev,) = pc.evaluate(T0 + 70 * 60)
    assert (ev.action, ev.kind) == ("clear", "precool_slow")
    done = pc.view(run.id, T0 + 90 * 60)
    assert (done["end_reason"], done["ended"]) == ("seven_eighths", T0 + 70 * 60)
    assert done["figures"]["half_s"] == pytest.approx(1200, abs=90)
    assert done["figures"]["seven_eighths_s"] == pytest.approx(3600, abs=120)
    rec = lots.record("SB-001", T0 + 90 * 60)
    assert rec["precooling"][0]["figures"]["seven_eighths_s"] == done["figures"]["seven_eighths_s"]
    pub = public_record(rec)["precooling"][0]
    assert "started_by" not in pub and pub["figures"]["too_slow"] is False


def test_a_slow_run_raises_the_alarm_before_its_target_and_sms_goes_out(lots: Lots) -> None:
    clock = Clock(start=T0)
    am = AlertManager(lots.cfg, lots.journal, clock, Stats())
    lots.check_in("SB-002", "strawberry", "pre", T0, ZHANG)
    cooling(lots.journal, 60 * 60, 50)  # half-cooling 1 h: 7/8 after 3 h, the target is 2 h
    events = lots.precool.evaluate(T0 + 50 * 60)  # 50 min in: the fit already says 3 h
    (ev,) = events
    assert (ev.action, ev.kind, ev.zone, ev.sensor) == ("fire", "precool_slow", "pre", "pulp1")
    assert ev.value == pytest.approx(3.0, rel=0.05) and ev.limit == 2.0
    ((_, row),) = am.apply(events)
    assert row.state == "firing" and row.kind == "precool_slow"
    texts = [o.text for o in lots.journal.outbox.find(alert_id=row.id)]
    assert texts and "预冷慢" in texts[0] and "目标2.0小时" in texts[0]
    assert am.apply(lots.precool.evaluate(T0 + 51 * 60)) == []  # still slow: no second alarm


def test_moving_the_lot_out_ends_its_run_with_the_figures_so_far(lots: Lots) -> None:
    lots.check_in("SB-003", "strawberry", "pre", T0, ZHANG)
    cooling(lots.journal, 30 * 60, 45)
    lots.move("SB-003", "z1", T0 + 45 * 60, ZHANG)
    (run,) = lots.journal.precool.find(lot="SB-003")
    assert run.end_reason == "lot_left" and run.ended == T0 + 45 * 60
    assert run.figures is not None and run.figures["half_s"] == pytest.approx(1800, abs=90)
    assert lots.journal.precool.find(open_only=True) == []


def test_one_open_run_per_room_and_only_in_precooling_rooms(lots: Lots) -> None:
    pc: Precooling = lots.precool
    pc.start("pre", T0, "zhang", commodity="strawberry")
    with pytest.raises(PrecoolConflict, match="already has precooling run"):
        pc.start("pre", T0 + 60, "zhang")
    with pytest.raises(PrecoolError, match="not a precooling room"):
        pc.start("z1", T0, "zhang")
    lots.check_in("SB-004", "strawberry", "pre", T0 + 120, ZHANG)  # the room's probes are busy: no second run
    assert [r.lot for r in lots.journal.precool.find()] == [None]
    (entry,) = [e for e in lots.journal.audit.entries("pre") if e["action"] == "precool.start"]
    assert entry["who"] == "zhang"


def test_the_config_names_a_precooling_sensor_that_is_not_in_the_room(tmp_path: Path) -> None:
    bad = PRECOOL.replace("supply_air: [air1]", "supply_air: [s1]")
    with pytest.raises(ConfigError) as exc:
        make_config(tmp_path, bad)
    assert "zones[0].precool.supply_air[0]: 's1' is not a sensor of zone 'pre'" in str(exc.value)


def test_the_least_cooled_of_two_probes_counts_and_a_late_finish_stays_too_slow(tmp_path: Path) -> None:
    """Probe 1 in a carton by the air inlet (half-cooling 20 min), probe 2 in the middle of the stack (50 min):
    the run is as far as probe 2; it reaches 7/8 after 2.5 h, past the strawberry's 2 h."""
    cfg = make_config(tmp_path, PRECOOL.replace("pulp: [pulp1]", "pulp: [pulp1, pulp2]").replace(
        "  - {id: air1,", "  - {id: pulp2, zone: pre, type: simulated, setpoint: 20}\n  - {id: air1,"))
    lots = Lots(Journal(tmp_path / "two.db"), cfg)
    lots.check_in("SB-005", "strawberry", "pre", T0, ZHANG)
    cooling(lots.journal, 20 * 60, 170)
    k = math.log(2) / (50 * 60)
    lots.journal.readings.append([Reading("t1", "pre", "pulp2", Quantity.TEMPERATURE,
                                          0.5 + 21.5 * math.exp(-k * i * 60), T0 + i * 60) for i in range(171)])
    (run,) = lots.journal.precool.find()
    probe, f = lots.precool.figures(run, T0 + 100 * 60)
    assert probe == "pulp2" and f.half_s == pytest.approx(3000, abs=90)
    assert [e.action for e in lots.precool.evaluate(T0 + 100 * 60)] == ["fire"]  # predicted 2.5 h > 2 h
    assert [e.action for e in lots.precool.evaluate(T0 + 170 * 60)] == ["clear"]  # 7/8 at 150 min: ends, clears
    done = lots.precool.view(run.id, T0 + 170 * 60)["figures"]
    assert done["probe"] == "pulp2" and done["seven_eighths_s"] == pytest.approx(9000, abs=120)
    assert done["too_slow"] is True  # the record keeps that it was late


def test_the_rooms_compliance_report_lists_its_runs_with_their_figures(lots: Lots) -> None:
    from daemon.reports.compliance import compliance, to_html

    lots.check_in("SB-006", "strawberry", "pre", T0, ZHANG)
    cooling(lots.journal, 20 * 60, 70)
    lots.precool.evaluate(T0 + 70 * 60)  # 7/8 at 60 min: the run ends with its figures
    rep = compliance(lots.journal, lots.cfg, "pre", T0 - 3600, T0 + 86400, T0 + 86400)
    (run,) = rep.json()["precooling"]
    assert run["lot"] == "SB-006" and run["end_reason"] == "seven_eighths"
    assert run["figures"]["seven_eighths_s"] == pytest.approx(3600, abs=120)
    page = to_html(rep, "zh-CN")
    assert 'id="precool"' in page and "在目标之内" in page and "SB-006" in page
    assert compliance(lots.journal, lots.cfg, "pre", T0 + 3600, T0 + 86400, T0 + 86400).precooling == []


def test_a_split_ends_the_parents_run_and_the_children_start_none(lots: Lots) -> None:
    from daemon.lots.transfers import split

    lots.check_in("SB-010", "strawberry", "pre", T0, ZHANG)
    cooling(lots.journal, 30 * 60, 45)
    split(lots, "SB-010", [("SB-010-A", None), ("SB-010-B", None)], T0 + 45 * 60, ZHANG)
    (run,) = lots.journal.precool.find(lot="SB-010")
    assert (run.end_reason, run.ended) == ("split", T0 + 45 * 60)
    assert run.figures is not None and run.figures["half_s"] == pytest.approx(1800, abs=90)
    assert lots.journal.precool.find(open_only=True) == []
    assert lots.journal.precool.find(lot="SB-010-A") == [] and lots.journal.precool.find(lot="SB-010-B") == []


def test_a_merge_ends_the_open_run_of_the_lot_merged(lots: Lots) -> None:
    from daemon.lots.transfers import merge

    lots.check_in("SB-011", "strawberry", "pre", T0, ZHANG)  # the room's run is this lot's
    lots.check_in("SB-012", "strawberry", "pre", T0 + 60, ZHANG)  # the probes are busy: no run
    cooling(lots.journal, 30 * 60, 30)
    merge(lots, ["SB-011", "SB-012"], "SB-013", T0 + 30 * 60, ZHANG)
    (run,) = lots.journal.precool.find()
    assert (run.lot, run.end_reason, run.ended) == ("SB-011", "merge", T0 + 30 * 60)
    assert lots.journal.precool.find(open_only=True) == []
