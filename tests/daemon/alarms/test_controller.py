"""A cold-room controller's state registers in the rules: its defrost mutes the high-temperature alarm as a
scheduled window does (with recovery, and not forever), its alarm register is a room alarm of its own kind."""

from __future__ import annotations

from pathlib import Path

from daemon.alarms.rules import CONTROLLER_DEFROST_MAX, CONTROLLER_RECOVERY, Rules
from daemon.ports.model import Quality, Quantity, Reading
from tests.conftest import MINIMAL, make_config

T0 = 1_700_000_000.0
CONFIG = MINIMAL.replace("commodity: mandarin}", "commodity: mandarin, alarms: {temperature: {delay: 0}}}")


def r(q: Quantity, v: float, t: float) -> Reading:
    return Reading("t1", "z1", "s1", q, v, T0 + t, Quality.GOOD, "")


def kinds(rules: Rules, *readings: Reading) -> list[tuple[str, str]]:
    return [(e.action, e.kind) for e in rules.on_readings(list(readings))]


def test_controller_defrost_mutes_the_high_alarm_with_recovery(tmp_path: Path) -> None:
    rules = Rules(make_config(tmp_path, CONFIG), T0)
    # one poll: the probe's warm reading comes first, the defrost bit after it; the defrost still counts
    assert kinds(rules, r(Quantity.TEMPERATURE, 12.0, 0), r(Quantity.DEFROST, 1, 0)) == []
    assert kinds(rules, r(Quantity.TEMPERATURE, 14.0, 600), r(Quantity.DEFROST, 1, 600)) == []
    assert kinds(rules, r(Quantity.TEMPERATURE, 11.0, 1200), r(Quantity.DEFROST, 0, 1200)) == []  # recovery
    late = 1200 + CONTROLLER_RECOVERY
    assert ("fire", "temp_high") in kinds(rules, r(Quantity.TEMPERATURE, 10.0, late), r(Quantity.DEFROST, 0, late))


def test_a_controller_stuck_in_defrost_does_not_hide_a_warm_room(tmp_path: Path) -> None:
    rules = Rules(make_config(tmp_path, CONFIG), T0)
    assert kinds(rules, r(Quantity.DEFROST, 1, 0), r(Quantity.TEMPERATURE, 12.0, 0)) == []
    t = CONTROLLER_DEFROST_MAX + 1
    assert ("fire", "temp_high") in kinds(rules, r(Quantity.DEFROST, 1, t), r(Quantity.TEMPERATURE, 12.0, t))


def test_a_clock_step_moves_the_controllers_defrost_with_it(tmp_path: Path) -> None:
    rules = Rules(make_config(tmp_path, CONFIG), T0)
    assert kinds(rules, r(Quantity.DEFROST, 1, 0)) == []
    rules.clock_jumped(86400.0)  # NTP sets the clock a day on: the defrost began "a day later" too
    assert kinds(rules, r(Quantity.TEMPERATURE, 12.0, 86400 + 600)) == []


def test_controller_alarm_register(tmp_path: Path) -> None:
    rules = Rules(make_config(tmp_path, CONFIG), T0)
    assert kinds(rules, r(Quantity.CONTROLLER_ALARM, 0, 0)) == []
    (ev,) = rules.on_readings([r(Quantity.CONTROLLER_ALARM, 4, 60)])
    assert (ev.action, ev.kind, ev.detail) == ("fire", "controller_alarm", "controller.alarm|code=0x0004")
    assert kinds(rules, r(Quantity.CONTROLLER_ALARM, 5, 120)) == []  # still in alarm: told once
    assert kinds(rules, r(Quantity.CONTROLLER_ALARM, 0, 180)) == [("clear", "controller_alarm")]
