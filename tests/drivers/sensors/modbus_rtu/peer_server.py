"""Device side of the Modbus test bus: pymodbus's own RTU server on a pty (run as a subprocess).

Usage: python peer_server.py PORT '{"1": {"ir": [0, 305, 546], "hr": [546, 305]}}'
Registers start at address 0 (`ir`/`hr` lists are indexed by register address).
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


def device(dev_id: int, ir: list[int], hr: list[int]) -> SimDevice:
    bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
    return SimDevice(dev_id, simdata=(bits, list(bits),
                                      [SimData(0, values=hr, datatype=DataType.REGISTERS)],
                                      [SimData(0, values=ir, datatype=DataType.REGISTERS)]))


def main() -> None:
    port, spec = sys.argv[1], json.loads(sys.argv[2])
    logging.basicConfig(level=logging.WARNING)
    devices = [device(int(k), v.get("ir", [0]), v.get("hr", [0])) for k, v in spec.items()]
    asyncio.run(StartAsyncSerialServer(devices, port=port, framer=FramerType.RTU, baudrate=9600))


if __name__ == "__main__":
    main()
