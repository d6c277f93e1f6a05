"""Config of one Modbus transmitter behind a TCP gateway or 4G DTU: gateway address, framing, unit id, registers."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from daemon.ports.durations import Duration
from daemon.ports.sources import SensorBase
from drivers.sensors.modbus_rtu.schema import PRESETS, QuantityName, RegisterConfig, RegisterMap


class ModbusTcpConfig(RegisterMap, SensorBase):
    """One transmitter (`unit_id`) behind the gateway at `host`:`tcp_port`; sensors sharing both share one link."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["modbus_tcp"]
    host: str = Field(min_length=1, description="gateway or DTU address, e.g. 192.168.1.50")
    tcp_port: int = Field(default=502, ge=1, le=65535, description="gateway TCP port (502 for Modbus TCP)")
    framing: Literal["tcp", "rtu"] = Field(
        default="tcp", description="tcp = Modbus TCP (MBAP header); rtu = RTU frames with CRC (transparent DTU)"
    )
    unit_id: int = Field(default=1, ge=0, le=255, description="Modbus unit id (slave address) 1..247; 0/255 tcp only")
    timeout: Duration = Field(default=1.0, gt=0, le=30, description="how long to wait for each answer")

    @model_validator(mode="after")
    def _unit(self) -> ModbusTcpConfig:
        ok = 1 <= self.unit_id <= 247 or (self.framing == "tcp" and self.unit_id in (0, 255))
        if not ok:
            raise ValueError(f"unit_id {self.unit_id}: 1..247 (0 or 255 only with framing: tcp)")
        return self


__all__ = ["PRESETS", "ModbusTcpConfig", "QuantityName", "RegisterConfig"]
