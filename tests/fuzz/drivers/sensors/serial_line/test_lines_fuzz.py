"""The serial line parser against generated lines and byte streams: values, None, or a SensorError naming the port.

A line that is not the sensor's is skipped; a value that is not a finite number becomes a
fault naming the port, never an exception that would restart the bus driver.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.ports.errors import SensorError
from drivers.sensors.serial_line import SerialLineConfig, exchange, parse_line
from tests.drivers.sensors.fakes import FakeSerial
from tests.fuzz.budget import FUZZ, STREAM_FUZZ

SOURCE = "serial_line:/dev/ttyFAKE#s1"
CONFIGS: dict[str, dict[str, Any]] = {
    "dht_tester": {"preset": "dht_tester"},
    "xy_md02_read": {"preset": "xy_md02_read", "line_timeout": 0.05},
    # an installer's own loose pattern: whatever follows T= is taken as the value
    "loose": {"pattern": r"T=(?P<temperature>\S+)\s+H=(?P<humidity>\S*)", "request": "R\\r\\n"},
}
FRAGMENTS = ["Humidity: ", "Temperature: ", "45.00", "%", "\t", " *C", "°C", "\ufffdF", "nan", "NaN", "inf", "1e999",
             "-", ".", "C,", "55.85%", "16.02C,", "T=", " H=", "1_000", "٣", "Failed to read from DHT sensor", "\r",
             "\n", "\x00", "0x10", "-0", "１２"]
TOKENS = st.one_of(st.sampled_from(FRAGMENTS), st.floats().map(str), st.integers().map(str), st.text(max_size=6))
TEMPLATES = ["Humidity: {}%  Temperature: {}°C {}°F", "Humidity: {} %\tTemperature: {} *{}", "{}C,{}%", "T={} H={}{}"]
LINES = st.one_of(
    st.builds(lambda t, a, b, c: t.format(a, b, c), st.sampled_from(TEMPLATES), TOKENS, TOKENS, TOKENS),
    st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join),
    st.text(max_size=80),
)


def config(name: str) -> SerialLineConfig:
    return SerialLineConfig.model_validate({"id": "s1", "zone": "z1", "type": "serial_line",
                                            "port": "/dev/ttyFAKE", **CONFIGS[name]})


def check_values(values: dict[str, Any], cfg: SerialLineConfig) -> None:
    assert set(values) == set(cfg.quantities)
    for v in values.values():
        if v.fault is not None:
            assert v.value is None and SOURCE in v.fault
        else:
            assert isinstance(v.value, float) and math.isfinite(v.value)
            assert v.unit in ("C", "F", "%")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parse_line_gives_values_none_or_a_named_error(name: str) -> None:
    cfg = config(name)

    @FUZZ
    @given(LINES)
    def run(line: str) -> None:
        try:
            values = parse_line(cfg, line, SOURCE)
        except SensorError as exc:
            assert exc.source == SOURCE
            return
        if values is not None:
            check_values(values, cfg)

    run()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_exchange_on_garbage_bytes_answers_or_times_out(name: str) -> None:
    cfg = config(name).model_copy(update={"line_timeout": 0.02})
    request = cfg.request_bytes or b""
    stream = st.one_of(st.binary(max_size=300),
                       st.lists(LINES, max_size=4).map(lambda ls: "\r\n".join(ls).encode("utf-8", "replace")))

    @STREAM_FUZZ
    @given(stream)
    def run(data: bytes) -> None:
        port = FakeSerial({request: data})
        if not request:
            port._pending = data  # a listening sensor: the bytes are already arriving
            port.reset_input_buffer = lambda: None  # type: ignore[method-assign]
        try:
            values = exchange(port, cfg, SOURCE)
        except SensorError as exc:
            assert exc.source == SOURCE
            return
        check_values(values, cfg)

    run()
