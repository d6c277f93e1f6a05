"""Config of one Modbus RTU transmitter on an RS485 bus: line settings, address, register map."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.ports.durations import Duration
from daemon.ports.sources import SensorBase
from drivers.sensors.modbus_rtu.presets import PRESETS, apply_preset
from drivers.sensors.serialport import PortSettings

QuantityName = Literal["temperature", "humidity"]
DEFAULT_UNITS = {"temperature": "C", "humidity": "%"}


class RegisterConfig(BaseModel):
    """Where one quantity lives and how its raw integer becomes a value: raw * multiplier / divisor."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Written `register:` in YAML; the Python name avoids shadowing BaseModel.register.
    number: int = Field(
        alias="register", ge=0, le=0xFFFF, description="register address as on the wire (0-based), e.g. 0x0001"
    )
    divisor: float = Field(default=1.0, gt=0, description="raw / divisor: 10 for x10 transmitters, 100 for x100")
    multiplier: float = Field(default=1.0, gt=0, description="raw * multiplier, for manuals that say 'x0.1'")
    signed: bool = Field(default=False, description="two's complement (negative temperatures)")
    words: Literal[1, 2] = Field(default=1, description="1 = 16-bit value, 2 = 32-bit over two registers")
    word_order: Literal["big", "little"] = Field(
        default="big", description="32-bit only: big = high word first (the Modbus habit), little = low word first"
    )
    unit: str | None = Field(default=None, description="unit of the scaled value; default C / %")


class RegisterMap(BaseModel):
    """A transmitter's register map (preset, function code, registers): the same for every Modbus framing,
    so `modbus_tcp` builds its config on it too."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["xy_md02", "fc03_humidity_first"] | None = Field(
        default=None, description="fill function_code and registers for a known transmitter; explicit keys win"
    )
    function_code: Literal[3, 4] = Field(default=3, description="3 = holding registers, 4 = input registers")
    registers: dict[QuantityName, RegisterConfig] = Field(
        min_length=1, description="register map per quantity (temperature, humidity)"
    )
    combine_reads: bool = Field(
        default=True, description="read all quantities in one request when their registers are close together"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, dict) else data

    def unit_of(self, quantity: QuantityName) -> str:
        """Unit the scaled value is in."""
        reg = self.registers[quantity]
        return reg.unit if reg.unit is not None else DEFAULT_UNITS[quantity]


class ModbusRtuConfig(RegisterMap, SensorBase, PortSettings):
    """One transmitter at `address` on the bus at `port`; sensors sharing a port share one bus."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["modbus_rtu"]
    address: int = Field(ge=1, le=247, description="Modbus device address (slave id), 1..247")
    timeout: Duration = Field(default=0.5, gt=0, le=10, description="how long to wait for an answer")


__all__ = ["PRESETS", "ModbusRtuConfig", "QuantityName", "RegisterConfig", "RegisterMap"]
