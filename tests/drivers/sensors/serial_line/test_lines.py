"""serial_line parsing and line reading: every line of PROTOCOLS.md 2.1/2.2, errors, nan and garbage."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from daemon.ports.errors import ConfigError, SensorReportedError, SensorTimeout
from drivers.registry import SENSORS
from drivers.sensors.serial_line import SAMPLE_YAML, SerialLineConfig, SerialLineDriver, exchange, parse_line, read_line
from drivers.sensors.serialbus import Value
from tests.drivers.sensors.fakes import FakeSerial

SRC = "serial_line:/dev/ttyFAKE"


def line_sensor(**options: Any) -> SerialLineConfig:
    return SerialLineConfig.model_validate(
        {"id": "dht", "zone": "z1", "type": "serial_line", "port": "/dev/ttyFAKE", **options}
    )


DHT = line_sensor(preset="dht_tester")
READ = line_sensor(preset="xy_md02_read")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # DHTtester, old print statements (TAB separated, "*C")
        (b"Humidity: 45.00 %\tTemperature: 23.00 *C 73.40 *F\tHeat index: 22.95 *C 73.31 *F",
         {"humidity": Value(45.0, "%"), "temperature": Value(23.0, "C")}),
        # newer copies: "%  Temperature: " and a UTF-8 degree sign (C2 B0)
        ("Humidity: 45.00%  Temperature: 23.00°C 73.40°F  Heat index: 22.95°C 73.31°F".encode(),
         {"humidity": Value(45.0, "%"), "temperature": Value(23.0, "C")}),
        # a Latin-1 sketch: B0 alone is not UTF-8 and decodes to U+FFFD; still a Celsius reading
        (b"Humidity: 91.50%  Temperature: -1.20\xb0C 29.84\xb0F  Heat index: -2.00\xb0C 28.40\xb0F",
         {"humidity": Value(91.5, "%"), "temperature": Value(-1.2, "C")}),
        # a sketch without the isnan() check
        (b"Humidity: nan %\tTemperature: nan *C nan *F\tHeat index: nan *C nan *F",
         {"humidity": Value(None, fault=f"{SRC}: device printed nan for humidity"),
          "temperature": Value(None, fault=f"{SRC}: device printed nan for temperature")}),
    ],
)
def test_dht_lines(raw: bytes, expected: dict[str, Value]) -> None:
    assert parse_line(DHT, raw.decode("utf-8", errors="replace"), SRC) == expected


def test_dht_error_line_is_a_reported_error() -> None:
    with pytest.raises(SensorReportedError) as err:
        parse_line(DHT, "Failed to read from DHT sensor!", SRC)
    assert str(err.value) == f"{SRC}: device reports 'Failed to read from DHT sensor!'"


@pytest.mark.parametrize(
    "text", ["", "DHTxx test!", "\ufffd\ufffd\x00garbage", "Temperature: 23.00 *C", "16.02C,55.85%"]
)
def test_other_lines_are_not_readings(text: str) -> None:
    assert parse_line(DHT, text, SRC) is None


def test_read_protocol_answer() -> None:
    assert READ.request_bytes == b"READ"
    assert parse_line(READ, "16.02C,55.85%", SRC) == {"temperature": Value(16.02, "C"), "humidity": Value(55.85, "%")}
    assert parse_line(READ, "-5.10C,80.00%", SRC) == {"temperature": Value(-5.1, "C"), "humidity": Value(80.0, "%")}
    assert parse_line(READ, "x16.02C,55.85%", SRC) is None


def test_fahrenheit_from_the_unit_group_or_the_config() -> None:
    cfg = line_sensor(pattern=r"T=(?P<temperature>-?\d+(?:\.\d+)?)(?P<unit>[CF])")
    assert parse_line(cfg, "T=41.0F", SRC) == {"temperature": Value(41.0, "F")}
    cfg = line_sensor(pattern=r"T=(?P<temperature>-?\d+(?:\.\d+)?)", temperature_unit="F")
    assert parse_line(cfg, "T=41.0", SRC) == {"temperature": Value(41.0, "F")}


def test_read_line_ends_on_crlf_or_quiet_and_exchange_sends_the_request() -> None:
    port = FakeSerial({b"READ": b"\r\n16.02C,55.85%"})  # no line end after the answer: a quiet gap ends it
    assert exchange(port, READ, SRC) == {"temperature": Value(16.02, "C"), "humidity": Value(55.85, "%")}
    assert port.written == [b"READ"]
    port = FakeSerial({b"READ": b"\x00\xff noise\r\nbad line\r\n"})
    with pytest.raises(SensorTimeout) as err:
        exchange(port, line_sensor(preset="xy_md02_read", line_timeout=0.3), SRC)
    assert str(err.value) == f"{SRC}: no matching line in 0.3 s; 2 other line(s), last 'bad line'"


def test_read_line_gives_none_at_the_deadline() -> None:
    import time

    assert read_line(FakeSerial({}), time.monotonic() + 0.05) is None


# --- config ---------------------------------------------------------------------------------


def test_registered_and_grouped_by_port() -> None:
    assert SENSORS["serial_line"] is SerialLineDriver
    a, b = line_sensor(id="a", preset="dht_tester"), line_sensor(id="b", preset="dht_tester", port="/dev/ttyACM0")
    assert SerialLineDriver.group([a, b]) == [[a], [b]]
    with pytest.raises(ConfigError, match=r"serial_line sensors on /dev/ttyFAKE disagree on baudrate \(9600 for a; "
                                          r"115200 for c\)"):
        SerialLineDriver.group([a, line_sensor(id="c", preset="dht_tester", baudrate=115200)])


def test_sample_yaml_validates_as_the_dht_preset() -> None:
    items = yaml.safe_load(SAMPLE_YAML)
    assert isinstance(items, list) and len(items) == 1
    cfg = SerialLineConfig.model_validate(items[0])
    preset = SerialLineConfig.model_validate({"id": cfg.id, "zone": cfg.zone, "type": "serial_line",
                                              "preset": "dht_tester"})
    assert cfg.model_dump(exclude={"preset"}) == preset.model_dump(exclude={"preset"})


def test_preset_keys_can_be_overridden() -> None:
    cfg = line_sensor(preset="xy_md02_read", request="READ\\r\\n", line_timeout="10s")
    assert (cfg.request_bytes, cfg.line_timeout) == (b"READ\r\n", 10.0)
    assert cfg.pattern.startswith("^(?P<temperature>")


@pytest.mark.parametrize(
    "options",
    [
        {},  # no pattern, no preset
        {"pattern": "Temp=(\\d+)"},  # no named group
        {"pattern": "(?P<temperature>"},  # not a regex
        {"preset": "dht_tester", "error_pattern": "(("},
        {"preset": "dht11"},
        {"preset": "dht_tester", "encoding": "klingon"},
        {"preset": "dht_tester", "line_timeout": 0},
        {"preset": "dht_tester", "temperature_unit": "K"},
        {"preset": "dht_tester", "request": "\\x4"},
        {"preset": "dht_tester", "colour": "blue"},
    ],
)
def test_invalid_options_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        line_sensor(**options)


@pytest.mark.parametrize("raw", ["abc", "-", "inf", "1e999", "Humidity:"])
def test_loose_pattern_capturing_text_gives_a_fault_not_a_crash(raw: str) -> None:
    # found by tests/fuzz: float() raised ValueError in the bus thread and restarted the whole port's driver
    loose = line_sensor(pattern=r"T=(?P<temperature>\S+)")
    assert parse_line(loose, f"T={raw}", SRC) == {
        "temperature": Value(None, fault=f"{SRC}: temperature {raw!r} is not a number")}
