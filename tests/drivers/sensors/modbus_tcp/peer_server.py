"""Gateway side of the Modbus TCP tests: pymodbus's own TCP server (run as a subprocess) in either framing.

Usage: python peer_server.py PORT FRAMING '{"1": {"ir": [0, 305, 546]}}'   (FRAMING: tcp or rtu)
A unit not listed answers exception 0x04 (pymodbus 3.16.1 quirk); silence is made by pausing the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from pymodbus import FramerType
from pymodbus.server import StartAsyncTcpServer

from tests.drivers.sensors.modbus_rtu.peer_server import from_spec


def main() -> None:
    port, framing, spec = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    logging.basicConfig(level=logging.WARNING)
    devices = from_spec(spec)
    framer = FramerType.RTU if framing == "rtu" else FramerType.SOCKET
    asyncio.run(StartAsyncTcpServer(devices, address=("127.0.0.1", port), framer=framer))


if __name__ == "__main__":
    main()
