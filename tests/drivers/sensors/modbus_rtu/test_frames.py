"""Every Modbus frame of PROTOCOLS.md 2.1, byte for byte: what we send and how we decode the answer."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.ports.errors import SensorReportedError, SensorTimeout
from drivers.sensors.modbus_rtu import ModbusRtuConfig, RegisterConfig, decode, plan_reads, scan, transact
from tests.drivers.sensors.fakes import FakeSerial, frame

SRC = "modbus_rtu:/dev/ttyFAKE#1"


def device(**options: Any) -> ModbusRtuConfig:
    return ModbusRtuConfig.model_validate(
        {"id": "th", "zone": "room1", "type": "modbus_rtu", "address": 1, "preset": "xy_md02", **options}
    )


def ask(cfg: ModbusRtuConfig, request: str, reply: str) -> tuple[dict[str, float], list[bytes]]:
    port = FakeSerial({frame(request): frame(reply)})
    values = transact(port, cfg, SRC)
    return values, port.written


@pytest.mark.parametrize(
    ("options", "sent", "reply", "expected"),
    [
        # read T, x10 units: 0x0131 = 305 -> 30.5 C
        ({"registers": {"humidity": None}}, "01 04 00 01 00 01 60 0A", "01 04 02 01 31 79 74", {"temperature": 30.5}),
        # read T, x100 units: 0x0BEA = 3050 -> 30.5 C
        (
            {"registers": {"humidity": None, "temperature": {"divisor": 100}}},
            "01 04 00 01 00 01 60 0A", "01 04 02 0B EA 3F 8F", {"temperature": 30.5},
        ),
        # read RH, x10: 0x0222 = 546 -> 54.6 %
        ({"registers": {"temperature": None}}, "01 04 00 02 00 01 90 0A", "01 04 02 02 22 38 49", {"humidity": 54.6}),
        # read RH, x100: 0x1554 = 5460 -> 54.6 %
        (
            {"registers": {"temperature": None, "humidity": {"divisor": 100}}},
            "01 04 00 02 00 01 90 0A", "01 04 02 15 54 B6 5F", {"humidity": 54.6},
        ),
        # read T+RH in one request
        ({}, "01 04 00 01 00 02 20 0B", "01 04 04 01 31 02 22 2A CE", {"temperature": 30.5, "humidity": 54.6}),
        # T+RH with T = -20.5 (two's complement 0xFF33), device 1
        ({}, "01 04 00 01 00 02 20 0B", "01 04 04 FF 33 02 22 BA E6", {"temperature": -20.5, "humidity": 54.6}),
        # negative T, device 2
        (
            {"address": 2, "registers": {"humidity": None}},
            "02 04 00 01 00 01 60 39", "02 04 02 FF 33 FC D5", {"temperature": -20.5},
        ),
        # T+RH, device 2
        (
            {"address": 2},
            "02 04 00 01 00 02 20 38", "02 04 04 FF 33 02 22 89 E6", {"temperature": -20.5, "humidity": 54.6},
        ),
        # the FC03 humidity-first map; reply recorded from the pymodbus 3.16.1 server (RH 546, T 305)
        (
            {"preset": "fc03_humidity_first"},
            "01 03 00 00 00 02 C4 0B", "01 03 04 02 22 01 31 9B C5", {"humidity": 54.6, "temperature": 30.5},
        ),
    ],
)
def test_protocol_frames(options: dict[str, Any], sent: str, reply: str, expected: dict[str, float]) -> None:
    values, written = ask(device(**options), sent, reply)
    assert written == [frame(sent)]
    assert values == expected


def test_separate_reads_when_combining_is_off() -> None:
    port = FakeSerial({
        frame("01 04 00 01 00 01 60 0A"): frame("01 04 02 01 31 79 74"),
        frame("01 04 00 02 00 01 90 0A"): frame("01 04 02 02 22 38 49"),
    })
    values = transact(port, device(combine_reads=False), SRC)
    assert port.written == [frame("01 04 00 01 00 01 60 0A"), frame("01 04 00 02 00 01 90 0A")]
    assert values == {"temperature": 30.5, "humidity": 54.6}


def test_exception_response_is_reported_error_naming_the_device() -> None:
    port = FakeSerial({frame("01 04 00 01 00 02 20 0B"): frame("01 84 02 C2 C1")})  # illegal data address
    with pytest.raises(SensorReportedError) as err:
        transact(port, device(timeout=0.05), SRC)
    assert err.value.source == SRC
    assert str(err.value).startswith(f"{SRC}: exception response to FC04 0x0001+2")
    assert "illegal data address" in str(err.value)


def test_silence_is_a_timeout() -> None:
    with pytest.raises(SensorTimeout, match=r"#1: no answer to FC04 0x0001\+2 in 0.05 s"):
        transact(FakeSerial({}), device(timeout=0.05), SRC)


def test_bad_crc_is_a_timeout_not_a_value() -> None:
    port = FakeSerial({frame("01 04 00 01 00 02 20 0B"): frame("01 04 04 01 31 02 22 2A CF")})
    with pytest.raises(SensorTimeout, match="bad answer"):
        transact(port, device(timeout=0.05), SRC)


def test_scan_sends_the_read_address_frame_and_lists_who_answers() -> None:
    # "read address: 01 03 01 01 00 01 D4 36 -> 01 03 02 00 01 79 84"; address 2 stays silent
    port = FakeSerial({frame("01 03 01 01 00 01 D4 36"): frame("01 03 02 00 01 79 84")})
    found = scan("/dev/ttyFAKE", addresses=[1, 2], timeout=0.05, function_code=3, register=0x0101,
                 opener=lambda _settings: port)
    assert found == [1]
    assert port.written[0] == frame("01 03 01 01 00 01 D4 36")
    assert not port.is_open


def test_scan_counts_an_exception_response_as_a_device() -> None:
    port = FakeSerial({frame("01 04 00 01 00 01 60 0A"): frame("01 84 02 C2 C1")})
    assert scan("/dev/ttyFAKE", addresses=[1], timeout=0.05, function_code=4, register=1,
                opener=lambda _settings: port) == [1]


# --- decoding ---------------------------------------------------------------------------------


def reg(**options: Any) -> RegisterConfig:
    return RegisterConfig.model_validate({"register": 0, **options})


@pytest.mark.parametrize(
    ("words", "options", "expected"),
    [
        ([305], {"divisor": 10}, 30.5),
        ([0xFF33], {"divisor": 10, "signed": True}, -20.5),
        ([0xFF33], {"divisor": 10}, 6533.1),  # unsigned map: a huge value the pipeline flags out of range
        ([546], {"multiplier": 0.1}, 54.6),
        ([0x0001, 0x0002], {"words": 2}, 65538.0),
        ([0x0002, 0x0001], {"words": 2, "word_order": "little"}, 65538.0),
        ([0xFFFF, 0xFF33], {"words": 2, "signed": True, "divisor": 10}, -20.5),
        ([0xFF33, 0xFFFF], {"words": 2, "signed": True, "divisor": 10, "word_order": "little"}, -20.5),
    ],
)
def test_decode(words: list[int], options: dict[str, Any], expected: float) -> None:
    assert decode(words, reg(**options)) == expected


def test_plan_reads_keeps_gaps_apart_and_32_bit_values_whole() -> None:
    cfg = device(registers={"temperature": {"register": 0x10, "words": 2}, "humidity": {"register": 0x12}})
    assert [(r.start, r.count, r.quantities) for r in plan_reads(cfg)] == [(0x10, 3, ("temperature", "humidity"))]
    cfg = device(registers={"temperature": {"register": 0x10}, "humidity": {"register": 0x20}})
    assert [(r.start, r.count) for r in plan_reads(cfg)] == [(0x10, 1), (0x20, 1)]
