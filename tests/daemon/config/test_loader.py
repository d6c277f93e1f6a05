"""Config errors name file, line and key; good configs load with commodity defaults."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.app.cli import main
from daemon.app.plugins import load_config, parse_config
from daemon.ports.errors import ConfigError
from tests.conftest import MINIMAL

ROOT = Path(__file__).resolve().parents[3]


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(textwrap.dedent(text), "config.yaml")
    return exc.value.problems


def test_minimal_config_loads(tmp_path: Path) -> None:
    cfg = parse_config(MINIMAL, "config.yaml", base_dir=tmp_path)
    assert cfg.site.language == "zh-CN"
    assert cfg.storage.journal == tmp_path / "journal.db"
    assert cfg.commodity("z1") is not None and cfg.commodity("z1").key == "mandarin"


def test_unknown_commodity_names_line_and_suggests() -> None:
    text = MINIMAL.replace("commodity: mandarin", "commodity: kiwi")
    (p,) = problems(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "kiwi" in ln)
    assert p == f"config.yaml:{line}: zones[0].commodity: unknown commodity 'kiwi'; did you mean 'kiwifruit'?"


def test_duplicate_sensor_id() -> None:
    text = MINIMAL.replace(
        "  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n",
        "  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n  - {id: s1, zone: z1, type: simulated, setpoint: 7}\n",
    )
    (p,) = problems(text)
    assert "sensors[1].id: 's1' is used twice (first at sensors[0])" in p
    line = [i for i, ln in enumerate(text.splitlines(), 1) if "id: s1" in ln][1]
    assert p.startswith(f"config.yaml:{line}:")


def test_zone_without_sensors_and_unknown_zone() -> None:
    text = MINIMAL.replace("  - {id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}\n",
                           "  - {id: z1, name: 1号库, commodity: mandarin}\n  - {id: z2, name: 2号库, commodity: apple}\n")
    text = text.replace("zone: z1, type", "zone: z3, type")
    ps = problems(text)
    assert any("sensors[0].zone: unknown zone 'z3'" in p for p in ps)
    assert any("zones[0]: zone 'z1' has no sensors" in p for p in ps)
    assert any("zones[1]: zone 'z2' has no sensors" in p for p in ps)


def test_unknown_sensor_type_lists_known_types() -> None:
    (p,) = problems(MINIMAL.replace("type: simulated", "type: simulatd"))
    assert "sensors[0].type: unknown sensor type 'simulatd'; did you mean 'simulated'?" in p
    assert "(known: " in p and "simulated" in p


def test_driver_option_error_has_key_path_and_line() -> None:
    text = MINIMAL.replace("setpoint: 6.5}", "setpoint: 6.5, tau: -3}")
    (p,) = problems(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "tau: -3" in ln)
    assert p.startswith(f"config.yaml:{line}: sensors[0].tau:")


def test_unknown_key_suggests_the_right_one() -> None:
    text = MINIMAL.replace("site: {id: t1, name: 测试冷库}", "site: {id: t1, name: 测试冷库, timezon: UTC}")
    (p,) = problems(text)
    assert p == "config.yaml:2: site.timezon: unknown key 'timezon'; did you mean 'timezone'?"


def test_nested_block_style_line_numbers() -> None:
    text = MINIMAL.replace(
        "  - {id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}\n",
        "  - id: z1\n    name: 1号库\n    commodity: mandarin\n    alarms:\n      temperature:\n        delay: soon\n",
    )
    (p,) = problems(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "delay: soon" in ln)
    assert p.startswith(f"config.yaml:{line}: zones[0].alarms.temperature.delay: 'soon' is not a duration")


def test_missing_required_key_points_at_parent() -> None:
    text = MINIMAL.replace("site: {id: t1, name: 测试冷库}", "site: {id: t1}")
    (p,) = problems(text)
    assert p == "config.yaml:2: site.name: required key is missing"


def test_bad_timezone_and_language() -> None:
    text = MINIMAL.replace("site: {id: t1, name: 测试冷库}", "site: {id: t1, name: x, timezone: Mars/Base, language: fr}")
    ps = problems(text)
    assert any("site.timezone: unknown time zone 'Mars/Base'" in p for p in ps)
    assert any(p.startswith("config.yaml:2: site.language:") for p in ps)


def test_yaml_syntax_error_has_line() -> None:
    text = MINIMAL + "zones: [\n"
    (p,) = problems(text)
    assert p.startswith("config.yaml:") and "YAML syntax error" in p


def test_control_character_is_a_syntax_error_with_line() -> None:
    # found by tests/fuzz: PyYAML's ReaderError is not a MarkedYAMLError and escaped as a traceback
    text = MINIMAL.replace("name: 测试冷库", "name: 测试\x1f冷库")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "\x1f" in ln)
    assert problems(text) == [f"config.yaml:{line}: YAML syntax error: control character U+001F is not allowed"]


def test_control_character_after_chinese_lines_names_its_own_line() -> None:
    # a guard for a faster loader: libyaml counts this position in bytes (3 per Chinese character), PyYAML in characters
    text = MINIMAL + "contacts_note: 冷库冷库冷库冷库冷库冷库冷库冷库\nextra:\n  x: \x1f\n"
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "\x1f" in ln)
    assert problems(text) == [f"config.yaml:{line}: YAML syntax error: control character U+001F is not allowed"]


def test_merge_key_override_is_reported_on_its_own_line() -> None:
    # a guard for parsing once: constructing the data flattens `<<` merges in the line map's tree in place
    text = MINIMAL.replace("  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n",
                           "  - &base {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n"
                           "  - <<: *base\n"
                           "    id: s2\n"
                           "    setpoint: warm\n")
    (p,) = problems(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "warm" in ln)
    assert p.startswith(f"config.yaml:{line}: sensors[1].setpoint:"), p


def test_key_written_twice_with_a_merge_key_is_not_a_duplicate() -> None:
    text = MINIMAL.replace("  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n",
                           "  - &base {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n"
                           "  - <<: *base\n"
                           "    id: s2\n")
    cfg = parse_config(textwrap.dedent(text), "config.yaml")
    assert [s.id for s in cfg.sensors] == ["s1", "s2"]


def test_unprintable_key_is_quoted() -> None:
    # found by tests/fuzz: a key holding a CR was printed raw, garbling the problem line
    text = MINIMAL + '"bad\\rkey": 1\n'
    (p,) = problems(text)
    assert p == f"config.yaml:{len(text.splitlines())}: 'bad\\rkey': unknown key 'bad\\rkey'"


@pytest.mark.parametrize("key", ["type", "preset"])
def test_list_where_a_name_belongs_is_reported(key: str) -> None:
    # found by tests/fuzz: `type: []` / `preset: []` raised TypeError (unhashable) in the loader
    text = MINIMAL.replace("{id: s1, zone: z1, type: simulated, setpoint: 6.5}",
                           "{id: s1, zone: z1, type: modbus_rtu, port: /dev/ttyUSB0, address: 1, preset: xy_md02}")
    text = text.replace(f"{key}: {'modbus_rtu' if key == 'type' else 'xy_md02'}", f"{key}: []")
    found = problems(text)
    assert all(p.startswith("config.yaml:") for p in found)
    assert any(f"sensors[0].{key}:" in p for p in found), found


def test_key_written_twice_is_an_error() -> None:
    text = MINIMAL + "api: {enabled: true}\n"
    ps = problems(text)
    assert any("api: key written twice" in p for p in ps)


def test_key_written_twice_in_a_sensor_names_its_line() -> None:
    text = MINIMAL.replace("  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n",
                           "  - id: s1\n    zone: z1\n    type: simulated\n    setpoint: 6.5\n    setpoint: 7\n")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "setpoint: 7" in ln)
    assert f"config.yaml:{line}: sensors[0].setpoint: key written twice" in problems(text)


def test_a_valid_config_is_not_composed_for_line_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    # the node tree is only for messages: composing a 200-sensor config cost ~1.1 MB of the daemon's RSS
    import yaml

    composed: list[str] = []
    real = yaml.compose
    monkeypatch.setattr(yaml, "compose", lambda text, Loader: composed.append(text) or real(text, Loader=Loader))
    parse_config(MINIMAL, "config.yaml")
    assert composed == []
    (p,) = problems(MINIMAL + "bogus: 1\n")
    assert p.startswith(f"config.yaml:{len(MINIMAL.splitlines()) + 1}: bogus: unknown key"), p
    assert len(composed) == 1


def test_escalation_references_checked() -> None:
    text = MINIMAL + "escalation:\n  steps:\n    - {contacts: [zhangg], notifiers: [sms]}\n"
    ps = problems(text)
    assert any("escalation.steps[0].contacts[0]: unknown contact 'zhangg'; did you mean 'zhang'?" in p for p in ps)
    assert any("escalation.steps[0].notifiers[0]: unknown notifier 'sms'" in p for p in ps)


def test_zone_without_commodity_needs_limits() -> None:
    text = MINIMAL.replace(", commodity: mandarin}", "}")
    (p,) = problems(text)
    assert "zones[0]: no commodity and no alarms.temperature.high/low" in p


def test_not_a_mapping() -> None:
    assert problems("- a\n- b\n") == ["config.yaml:1: the file must be a mapping with keys site, sensors, zones ..."]


@pytest.mark.parametrize("name", ["example.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(ROOT / "config" / name)
    assert cfg.zones and cfg.sensors


def test_check_config_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL, encoding="utf-8")
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("mandarin", "kiwi"), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["check-config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "did you mean 'kiwifruit'?" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["check-config", str(tmp_path / "missing.yaml")])
    assert exc.value.code == 2
    assert "cannot read config" in capsys.readouterr().err


def test_bus_settings_and_port_sharing_are_checked_at_load() -> None:
    text = MINIMAL.replace(
        "  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n",
        "  - {id: s1, zone: z1, type: modbus_rtu, port: /dev/ttyUSB0, address: 1, preset: xy_md02}\n"
        "  - {id: s2, zone: z1, type: modbus_rtu, port: /dev/ttyUSB0, address: 2, preset: xy_md02, baudrate: 19200}\n"
        "  - {id: s3, zone: z1, type: serial_line, port: /dev/ttyUSB0, preset: dht_tester}\n",
    )
    ps = problems(text)
    assert any("sensors: modbus_rtu sensors on /dev/ttyUSB0 disagree on baudrate" in p for p in ps), ps
    port = next(p for p in ps if "one port can speak only one protocol" in p)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "id: s3" in ln)
    assert port.startswith(f"config.yaml:{line}: sensors[2].port: /dev/ttyUSB0 is used by modbus_rtu and serial_line")


def test_site_kind_is_center_by_default_or_vehicle() -> None:
    assert parse_config(MINIMAL, "config.yaml").site.kind == "center"
    text = MINIMAL.replace("site: {id: t1, name: 测试冷库}", "site: {id: truck-1, name: 渝A-12345 冷藏车, kind: vehicle}")
    assert parse_config(text, "config.yaml").site.kind == "vehicle"


def test_bad_site_kind_names_file_line_and_key() -> None:
    text = MINIMAL.replace("site: {id: t1, name: 测试冷库}", "site:\n  id: t1\n  name: x\n  kind: truck")
    (p,) = problems(text)
    assert p.startswith("config.yaml:5: site.kind: ") and "'center' or 'vehicle'" in p, p


def test_a_vehicle_compartment_cannot_precool() -> None:
    text = MINIMAL.replace("site: {id: t1, name: 测试冷库}", "site: {id: truck-1, name: x, kind: vehicle}").replace(
        "commodity: mandarin}", "commodity: mandarin, precool: {pulp: [s1], supply_air: [s1]}}")
    (p,) = problems(text)
    assert p.startswith("config.yaml:5: zones[0].precool: a vehicle's compartments do not precool"), p
