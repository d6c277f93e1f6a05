"""Config of one Modbus RTU transmitter on an RS485 bus: line settings, address, register map."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.ports.durations import Duration
from daemon.ports.sources import SensorBase
from drivers.sensors.modbus_rtu.presets import PRESETS, apply_preset
from drivers.sensors.serialport import PortSettings

QuantityName = Literal["temperature", "humidity", "defrost", "controller_alarm"]
DEFAULT_UNITS = {"temperature": "C", "humidity": "%", "defrost": "", "controller_alarm": ""}
STATES = ("defrost", "controller_alarm")  # a controller's state registers: a bit or a mask, never scaled


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
    bit: int | None = Field(
        default=None, ge=0, le=31, description="state registers: the value is this bit (0 = lowest), e.g. "
        "the defrost bit of a status word",
    )
    mask: int | None = Field(
        default=None, ge=1, le=0xFFFFFFFF, description="state registers: the value is raw AND mask, e.g. the "
        "alarm bits of a status word (0 = no alarm)",
    )
    function_code: Literal[1, 2, 3, 4] | None = Field(
        default=None, description="this quantity's own function code, when not the map's: 1 = a coil, 2 = a "
        "discrete input (a controller's defrost or alarm state as one bit, 0/1; `register` is the bit's "
        "address), 3 / 4 = holding / input registers",
    )

    @model_validator(mode="after")
    def _bit_or_mask(self) -> RegisterConfig:
        if self.bit is not None and self.mask is not None:
            raise ValueError("give bit or mask, not both")
        if self.is_bit and (self.bit is not None or self.mask is not None or self.words != 1 or self.signed):
            raise ValueError("a coil or discrete input (function_code 1 / 2) is one bit: no bit, mask, words or "
                             "signed")
        return self

    @property
    def is_bit(self) -> bool:
        """Read with FC01 / FC02: the value is the bit itself."""
        return self.function_code in (1, 2)


class RegisterMap(BaseModel):
    """A transmitter's register map (preset, function code, registers): the same for every Modbus framing,
    so `modbus_tcp` builds its config on it too."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(
        default=None, description="fill function_code and registers for a known transmitter or controller: "
        f"{', '.join(sorted(PRESETS))}; explicit keys win",
    )
    function_code: Literal[3, 4] = Field(default=3, description="3 = holding registers, 4 = input registers; a "
                                         "register's own function_code wins (1 / 2 for a coil or discrete input)")
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

    @field_validator("preset")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in PRESETS:
            raise ValueError(f"unknown preset {v!r}; known: {', '.join(sorted(PRESETS))}")
        return v

    @model_validator(mode="after")
    def _states(self) -> RegisterMap:
        for q, reg in self.registers.items():
            if reg.is_bit:
                if q not in STATES:
                    raise ValueError(f"registers.{q}: a coil or discrete input holds a state (defrost, "
                                     "controller_alarm), not a measurement")
                continue
            if q == "defrost" and reg.bit is None:
                raise ValueError("registers.defrost needs `bit`: which bit of the register says it defrosts")
            if q == "controller_alarm" and reg.bit is None and reg.mask is None:
                raise ValueError("registers.controller_alarm needs `mask` (or `bit`): which bits are alarms")
            if q not in STATES and (reg.bit is not None or reg.mask is not None):
                raise ValueError(f"registers.{q}: bit and mask are for defrost and controller_alarm")
        return self

    def function_of(self, quantity: QuantityName) -> int:
        """The function code that reads `quantity`: its register's own, else the map's."""
        return self.registers[quantity].function_code or self.function_code

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
