"""The commands docs/install.md gives an installer work as written: the Modbus address snippet runs against
pymodbus's own server on one end of a socat pty pair (the real-peer rig of DESIGN.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "install.md"

SERVER = """
import asyncio, sys
from pymodbus.datastore import ModbusDeviceContext, ModbusServerContext, ModbusSparseDataBlock
from pymodbus.server import StartAsyncSerialServer

# An XY-MD02 at address 1: holding 0x0101 = its address, 0x0102 = baud code (both offsets, whichever pymodbus uses).
hr = ModbusSparseDataBlock({0x0100: 1, 0x0101: 1, 0x0102: 1, 0x0103: 1})
ctx = ModbusServerContext(devices={1: ModbusDeviceContext(hr=hr)}, single=False)
print("serving", flush=True)
asyncio.run(StartAsyncSerialServer(ctx, port=sys.argv[1], baudrate=9600))
"""


def address_snippet() -> str:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"sudo /opt/coldchain/bin/python - <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert m, "docs/install.md lost its address-setting snippet"
    return m.group(1)


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    exe = shutil.which("socat")
    assert exe, "socat not found: apt-get install socat (make test does)"
    dev, host = tmp_path / "ttySENSOR", tmp_path / "ttyHOST"
    p = subprocess.Popen([exe, f"PTY,link={dev},raw,echo=0", f"PTY,link={host},raw,echo=0"],
                         stderr=subprocess.PIPE, text=True)
    try:
        while not (dev.exists() and host.exists()):
            assert p.poll() is None, p.stderr.read() if p.stderr else "socat exited"
            time.sleep(0.01)
        yield dev, host
    finally:
        p.terminate()
        p.wait(timeout=10)


@pytest.mark.peer
def test_modbus_address_snippet_writes_the_address_register(serial_pair: tuple[Path, Path]) -> None:
    dev, host = serial_pair
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(dev)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "serving"
        code = re.sub(r'^PORT = ".*"', f'PORT = "{host}"', address_snippet(), flags=re.M)
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        now, new = p.stdout.splitlines()
        assert now.startswith("now: ") and "registers=[1]" in now, now
        assert new.startswith("set: ") and "registers=[2]" in new and "Exception" not in new, new
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_documented_address_frame_has_the_right_crc() -> None:
    """`01 06 01 01 00 08 D8 30`: write holding 0x0101 = 8 at address 1, CRC-16/MODBUS low byte first."""
    frame = bytes.fromhex("01 06 01 01 00 08")
    crc = 0xFFFF
    for b in frame:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    assert f"{frame.hex(' ').upper()} {crc & 0xFF:02X} {crc >> 8:02X}" in DOC.read_text(encoding="utf-8")
