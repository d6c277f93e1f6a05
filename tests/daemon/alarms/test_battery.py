"""The low-battery warning: a device alarm of its own kind, per-sensor limits, and device readings kept out of
the room's conditions (no data, stuck value, faults)."""

from __future__ import annotations

from pathlib import Path

from daemon.alarms.escalation import Escalation
from daemon.alarms.rules import Rules
from daemon.ports.model import Quality, Quantity, Reading
from tests.conftest import MINIMAL, make_config

T0 = 1_700_000_000.0
CONFIG = MINIMAL.replace(
    "type: simulated, setpoint: 6.5}",
    "type: simulated, setpoint: 6.5}\n  - {id: s2, zone: z1, type: simulated, setpoint: 6.5, battery_low: {percent: null, volts: 2.2}}",
).replace('phone: "+8613800138000"}', 'phone: "+8613800138000"}\n  - {id: li, name: 李工, phone: "+8613900139000", '
          "device_alarms: true, language: en}")


def r(q: Quantity, v: float | None, t: float, sensor: str = "s1") -> Reading:
    return Reading("t1", "z1", sensor, q, v, T0 + t, Quality.GOOD if v is not None else Quality.FAULT, "")


def events(rules: Rules, *readings: Reading) -> list[tuple[str, str, str, float | None]]:
    return [(e.action, e.kind, e.sensor, e.limit) for e in rules.on_readings(list(readings))]


def test_low_battery_fires_once_and_clears_when_changed(tmp_path: Path) -> None:
    rules = Rules(make_config(tmp_path, CONFIG), T0)
    assert events(rules, r(Quantity.BATTERY, 35, 0)) == []
    assert events(rules, r(Quantity.BATTERY, 19, 3600)) == [("fire", "battery_low", "s1", 20.0)]
    assert events(rules, r(Quantity.BATTERY, 18, 7200)) == []  # told once
    assert events(rules, r(Quantity.BATTERY, 22, 9000)) == []  # a warm hour lifts it a little: not changed
    assert events(rules, r(Quantity.BATTERY, 100, 10800)) == [("clear", "battery_low", "s1", None)]


def test_volts_limit_per_sensor_and_percent_off(tmp_path: Path) -> None:
    rules = Rules(make_config(tmp_path, CONFIG), T0)
    assert events(rules, r(Quantity.BATTERY_VOLTAGE, 2.4, 0)) == [("fire", "battery_low", "s1", 2.5)]  # default
    assert events(rules, r(Quantity.BATTERY_VOLTAGE, 2.3, 0, "s2")) == []  # s2 warns below 2.2 V
    assert events(rules, r(Quantity.BATTERY, 1, 0, "s2")) == []  # percent: null turns it off
    (ev,) = rules.on_readings([r(Quantity.BATTERY_VOLTAGE, 2.1, 60, "s2")])
    assert ev.detail == "device.battery_voltage|value=2.1|limit=2.2" and ev.key == "z1/s2/battery_low:battery_voltage"


def test_device_readings_do_not_count_as_room_data(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, CONFIG)
    rules = Rules(cfg, T0)
    stale = cfg.sensors[0].stale_after_s
    rules.on_readings([r(Quantity.TEMPERATURE, 6.0, 0)])
    for k in range(1, 40):  # an unchanged signal, and unusable battery values, for hours
        assert events(rules, r(Quantity.SIGNAL, -70, k * 600), r(Quantity.BATTERY, None, k * 600 + 1)) == []
    # the temperature stopped at 0 s: the no-data alarm fires, whatever the battery and signal say
    fired = [(e.action, e.kind) for e in rules.tick(T0 + stale + 1)]
    assert ("fire", "no_data") in fired and all(e.kind != "sensor_fault" for e in rules.tick(T0 + 40 * 600))


def test_device_alarms_go_to_the_installer(tmp_path: Path) -> None:
    esc = Escalation(make_config(tmp_path, CONFIG))
    assert [(x.contact, x.lang) for x in esc.device_recipients()] == [("li", "en")]
    assert [x.contact for x in esc.recipients(0)] == ["zhang", "li"]  # room alarms: everyone, as before
    no_installer = Escalation(make_config(tmp_path, MINIMAL))
    assert [x.contact for x in no_installer.device_recipients()] == ["zhang"]
