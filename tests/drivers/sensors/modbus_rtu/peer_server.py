"""Device side of the Modbus test bus: pymodbus's own RTU server on a pty (run as a subprocess).

Usage: python peer_server.py PORT '{"1": {"ir": [0, 305, 546], "hr": [546, 305], "co": [0, 1], "di": [1]}}'
Registers and bits start at address 0 (the lists are indexed by address).
An address not listed answers exception 0x04 (a pymodbus 3.16.1 quirk; a real bus stays silent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from pymodbus import FramerType
from pymodbus.server import StartAsyncSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice


def device(dev_id: int, ir: list[int], hr: list[int], co: list[bool] | None = None,
           di: list[bool] | None = None) -> SimDevice:
    """`co` / `di`: coils and discrete inputs from address 0 (16 of each, off, when not given)."""
    def bits(values: list[bool] | None) -> list[SimData]:
        if not values:
            return [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        return [SimData(0, values=values, datatype=DataType.BITS)]

    return SimDevice(dev_id, simdata=(bits(co), bits(di),
                                      [SimData(0, values=hr, datatype=DataType.REGISTERS)],
                                      [SimData(0, values=ir, datatype=DataType.REGISTERS)]))


def from_spec(spec: dict[str, dict[str, list[int]]]) -> list[SimDevice]:
    """Devices from the command line's JSON: {"1": {"ir": [...], "hr": [...], "co": [0, 1], "di": [...]}}."""
    return [device(int(k), v.get("ir", [0]), v.get("hr", [0]), [bool(x) for x in v.get("co", [])],
                   [bool(x) for x in v.get("di", [])]) for k, v in spec.items()]


def main() -> None:
    port, spec = sys.argv[1], json.loads(sys.argv[2])
    logging.basicConfig(level=logging.WARNING)
    devices = from_spec(spec)
    asyncio.run(StartAsyncSerialServer(devices, port=port, framer=FramerType.RTU, baudrate=9600))


if __name__ == "__main__":
    main()
