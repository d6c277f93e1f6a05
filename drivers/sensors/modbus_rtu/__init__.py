"""`type: modbus_rtu`: temperature/humidity transmitters on an RS485 bus (Modbus RTU, via minimalmodbus).

One driver instance per serial port (bus). An APScheduler job polls the bus; each device
is asked in turn on the bus's own thread, so a dead device costs one `timeout` and the
others still answer every interval. Frames and register maps: PROTOCOLS.md section 2.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import minimalmodbus

from daemon.ports.errors import SensorReportedError, SensorTimeout
from drivers.registry import sensor
from drivers.sensors.modbus_rtu.schema import PRESETS, ModbusRtuConfig, QuantityName, RegisterConfig, RegisterMap
from drivers.sensors.serialbus import SerialBusDriver, Value
from drivers.sensors.serialport import PortSettings, SerialLike, open_serial

__all__ = [
    "PRESETS", "SAMPLE_YAML", "ModbusRtuConfig", "ModbusRtuDriver", "Read", "RegisterMap", "decode", "plan_reads",
    "scan", "transact",
]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `sensors:` list item showing every option with its default."""

MAX_BLOCK = 16
"""Most registers combined into one request; transmitters answer short reads fastest."""

@dataclass(frozen=True)
class Read:
    """One request on the wire: `count` registers (or bits, FC01/02) from `start`, feeding `quantities`."""

    start: int
    count: int
    quantities: tuple[QuantityName, ...]
    function_code: int = 3

    @property
    def where(self) -> str:
        """How faults name the request: `FC03 0x0100+2`."""
        return f"FC{self.function_code:02d} 0x{self.start:04X}+{self.count}"


def plan_reads(cfg: RegisterMap) -> list[Read]:
    """Requests for one poll; adjacent registers of one function code share a request when `combine_reads`
    is on."""
    spans = sorted((cfg.function_of(q), r.number, r.number + r.words - 1, q) for q, r in cfg.registers.items())
    reads: list[list[Any]] = []
    for fc, lo, hi, q in spans:
        last = reads[-1] if reads else None
        if (cfg.combine_reads and last is not None and last[0] == fc and lo <= last[2] + 1
                and max(hi, last[2]) - last[1] < MAX_BLOCK):
            last[2] = max(last[2], hi)
            last[3].append(q)
        else:
            reads.append([fc, lo, hi, [q]])
    return [Read(lo, hi - lo + 1, tuple(qs), fc) for fc, lo, hi, qs in reads]


def decode(registers: Sequence[int], reg: RegisterConfig) -> float:
    """Scaled value from the register word(s) of one quantity (first word at index 0); a state register's
    bit (0/1) or masked bits, unscaled; a coil's or discrete input's own bit."""
    if reg.is_bit:
        return float(registers[0] & 1)
    if reg.words == 2:
        hi, lo = (registers[0], registers[1]) if reg.word_order == "big" else (registers[1], registers[0])
        raw, bits = (hi << 16) | lo, 32
    else:
        raw, bits = registers[0], 16
    if reg.bit is not None:
        return float((raw >> reg.bit) & 1)
    if reg.mask is not None:
        return float(raw & reg.mask)
    if reg.signed and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    return round(raw * reg.multiplier / reg.divisor, 6)


def transact(port: SerialLike, cfg: ModbusRtuConfig, source: str) -> dict[QuantityName, float]:
    """Poll one device (blocking, on the bus thread): its values, or SensorTimeout/SensorReportedError.

    Port failures (pyserial/OS errors) propagate so the link can mark the bus down.
    """
    # minimalmodbus only duck-types a port object (read, write, timeout ...), which SerialLike is
    instrument = minimalmodbus.Instrument(port, cfg.address)  # type: ignore[arg-type]
    port.timeout = cfg.timeout
    values: dict[QuantityName, float] = {}
    for rd in plan_reads(cfg):
        where = rd.where
        try:
            if rd.function_code in (1, 2):
                words = instrument.read_bits(rd.start, rd.count, functioncode=rd.function_code)
            else:
                words = instrument.read_registers(rd.start, rd.count, functioncode=rd.function_code)
        except minimalmodbus.SlaveReportedException as exc:
            raise SensorReportedError(source, f"exception response to {where}: {exc}") from exc
        except minimalmodbus.NoResponseError as exc:
            raise SensorTimeout(source, f"no answer to {where} in {cfg.timeout:g} s") from exc
        except minimalmodbus.ModbusException as exc:  # CRC error, wrong address, short frame
            raise SensorTimeout(source, f"bad answer to {where}: {exc}") from exc
        for q in rd.quantities:
            reg = cfg.registers[q]
            off = reg.number - rd.start
            values[q] = decode(words[off : off + reg.words], reg)
    return values


def scan(
    port: str,
    *,
    baudrate: int = 9600,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: int = 1,
    addresses: Iterable[int] = range(1, 248),
    timeout: float = 0.1,
    function_code: int = 3,
    register: int = 0,
    opener: Any = open_serial,
) -> list[int]:
    """Addresses on a bus that answer a one-register read, with data or an exception (both mean a
    device is there). Blocking, about len(addresses) x timeout: call it with asyncio.to_thread."""
    settings = PortSettings.model_validate(
        {"port": port, "baudrate": baudrate, "bytesize": bytesize, "parity": parity, "stopbits": stopbits}
    )
    ser = opener(settings)
    found = []
    try:
        ser.timeout = timeout
        for addr in addresses:
            instrument = minimalmodbus.Instrument(ser, addr)
            try:
                instrument.read_registers(register, 1, functioncode=function_code)
            except minimalmodbus.SlaveReportedException:
                pass  # an exception response still proves a device at this address
            except minimalmodbus.ModbusException:
                continue  # silence or garbage: nobody (or a collision) there
            found.append(addr)
    finally:
        ser.close()
    return found


@sensor("modbus_rtu")
class ModbusRtuDriver(SerialBusDriver[ModbusRtuConfig]):
    """All transmitters on one RS485 port, polled in turn by one APScheduler job."""

    Config = ModbusRtuConfig
    scan = staticmethod(scan)

    def device_source(self, dev: ModbusRtuConfig) -> str:
        """Names one device in faults and logs: `modbus_rtu:/dev/ttyUSB0#3`."""
        return f"{self.source}#{dev.address}"

    def quantities(self, dev: ModbusRtuConfig) -> list[str]:
        return list(dev.registers)

    def ask(self, port: SerialLike, dev: ModbusRtuConfig) -> dict[str, Value]:
        values = transact(port, dev, self.device_source(dev))
        return {q: Value(v, dev.unit_of(q)) for q, v in values.items()}

    def describe_device(self, dev: ModbusRtuConfig) -> dict[str, Any]:
        return {"address": dev.address, "function_code": dev.function_code}
