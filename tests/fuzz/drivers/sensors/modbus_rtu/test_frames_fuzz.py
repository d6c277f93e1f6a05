"""The Modbus RTU response path against generated answers: values, or SensorTimeout/SensorReportedError naming
the device. Garbage, short frames, wrong CRCs, wrong slave ids and exception codes never escape as anything else.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.ports.errors import SensorError
from drivers.sensors.modbus_rtu import ModbusRtuConfig, decode, transact
from drivers.sensors.modbus_rtu.schema import RegisterConfig
from tests.drivers.sensors.fakes import FakeSerial
from tests.fuzz.budget import FUZZ

SOURCE = "modbus_rtu:/dev/ttyFAKE#1"
PRESETS = ["xy_md02", "fc03_humidity_first"]


def device(preset: str) -> ModbusRtuConfig:
    return ModbusRtuConfig.model_validate({"id": "d1", "zone": "z1", "type": "modbus_rtu", "port": "/dev/ttyFAKE",
                                           "address": 1, "preset": preset, "timeout": 0.01})


def with_crc(body: bytes) -> bytes:
    """The frame with its Modbus CRC-16 (poly 0xA001, low byte first)."""
    crc = 0xFFFF
    for b in body:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return body + struct.pack("<H", crc)


def answers(fc: int) -> st.SearchStrategy[bytes]:
    """Raw garbage, plausible frames with a right CRC (any slave, function, length, words), exception replies."""
    plausible = st.builds(
        lambda slave, func, words, count: with_crc(bytes([slave, func, count if count is not None else 2 * len(words)])
                                                   + b"".join(w.to_bytes(2, "big") for w in words)),
        st.sampled_from([1, 1, 1, 2, 0, 255]), st.sampled_from([fc, fc, fc, fc | 0x80, 3, 4, 6]),
        st.lists(st.integers(0, 0xFFFF), max_size=4), st.one_of(st.none(), st.integers(0, 255)))
    exception = st.builds(lambda code: with_crc(bytes([1, fc | 0x80, code])), st.integers(0, 255))
    return st.one_of(plausible, exception, st.binary(max_size=12))


@pytest.mark.parametrize("preset", PRESETS)
def test_transact_returns_values_or_a_sensor_error(preset: str) -> None:
    dev = device(preset)

    @FUZZ
    @given(answers(dev.function_code))
    def run(reply: bytes) -> None:
        port = FakeSerial()
        port.write = lambda data: (setattr(port, "_pending", reply), len(data))[1]  # type: ignore[method-assign]
        try:
            values = transact(port, dev, SOURCE)
        except SensorError as exc:
            assert exc.source == SOURCE
            return
        assert set(values) == set(dev.registers)
        assert all(math.isfinite(v) for v in values.values())

    run()


@FUZZ
@given(st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2), st.builds(
    RegisterConfig, register=st.integers(0, 0xFFFF), divisor=st.floats(0.001, 1e6), multiplier=st.floats(1e-6, 1e3),
    signed=st.booleans(), words=st.sampled_from([1, 2]), word_order=st.sampled_from(["big", "little"])))
def test_decode_any_words_is_finite(words: list[int], reg: RegisterConfig) -> None:
    value = decode(words, reg)
    assert math.isfinite(value)
    bits = 16 * reg.words
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if reg.signed else (0, (1 << bits) - 1)
    scale = reg.multiplier / reg.divisor
    tol = 1e-9 * max(-lo, hi) * scale + 1e-6  # float rounding of raw * multiplier / divisor
    assert lo * scale - tol <= value <= hi * scale + tol
