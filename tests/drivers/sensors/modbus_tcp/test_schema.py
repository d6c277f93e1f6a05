"""modbus_tcp config: the sample, presets shared with modbus_rtu, unit ids, one framing per gateway, frames."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from daemon.ports.errors import ConfigError
from drivers.sensors.modbus_tcp import SAMPLE_YAML, ModbusTcpConfig, ModbusTcpDriver
from drivers.sensors.modbus_tcp.frames import crc16, request


def cfg(**options: object) -> ModbusTcpConfig:
    return ModbusTcpConfig.model_validate({"id": "a", "zone": "z1", "type": "modbus_tcp", "host": "10.0.0.5",
                                           "preset": "xy_md02", **options})


def test_sample_yaml_validates_as_the_xy_md02_preset() -> None:
    items = yaml.safe_load(SAMPLE_YAML)
    assert isinstance(items, list) and len(items) == 1
    sample = ModbusTcpConfig.model_validate(items[0])
    preset = cfg(id=sample.id, zone=sample.zone, host=sample.host)
    assert sample.model_dump(exclude={"preset"}) == preset.model_dump(exclude={"preset"})


def test_unit_ids_zero_and_255_only_with_mbap() -> None:
    assert cfg(unit_id=0).unit_id == 0 and cfg(unit_id=255).unit_id == 255
    for bad in ({"unit_id": 0, "framing": "rtu"}, {"unit_id": 250}, {"unit_id": 256}):
        with pytest.raises(ValidationError, match="unit_id"):
            cfg(**bad)


def test_one_framing_per_gateway_naming_the_sensors() -> None:
    a, b = cfg(id="a"), cfg(id="b", framing="rtu", unit_id=2)
    with pytest.raises(ConfigError) as err:
        ModbusTcpDriver.group([a, b, cfg(id="c", host="10.0.0.6")])
    assert err.value.problems == ["modbus_tcp sensors on 10.0.0.5:502 disagree on framing (tcp for a; rtu for b); "
                                  "one gateway has one framing"]


def test_request_frames_match_the_documented_bytes() -> None:
    # PROTOCOLS.md 2.1: XY-MD02 read of T+RH is 01 04 00 01 00 02 20 0B on RS485
    assert request("rtu", 7, 1, 4, 1, 2) == bytes.fromhex("01 04 00 01 00 02 20 0B")
    assert request("tcp", 7, 1, 4, 1, 2) == bytes.fromhex("00 07 00 00 00 06 01 04 00 01 00 02")
    assert crc16(bytes.fromhex("01 04 04 01 31 02 22")) == bytes.fromhex("2A CE")
