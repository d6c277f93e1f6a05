"""Ruuvi manufacturer data (company 0x0499) in the formats Ruuvi documents as in production:
5 (RAWv2, RuuviTag), C5 (cut RAWv2: no acceleration), 6 and E1 (Ruuvi Air).

Pure functions, no I/O. A field at its "not available" value (temperature 0x8000, humidity 65535,
pressure 65535 ...) is None here; the format drivers turn a None quantity into a fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from daemon.ports.payloads import PayloadError

COMPANY_ID = 0x0499
# format byte -> (length of the data after the company id, name)
FORMATS: dict[int, tuple[int, str]] = {0x05: (24, "5"), 0xC5: (18, "C5"), 0x06: (20, "6"), 0xE1: (40, "E1")}
LUX_STEP = math.log(65_536) / 254  # format 6 light: a logarithmic code 0 ... 254
NOT_DECODED = {0x03: "3 (RAWv1; firmware 3 and later send format 5)", 0x04: "4 (URL, Eddystone)",
               0x08: "8 (encrypted, a proposal)"}


@dataclass
class RuuviData:
    """What one advertisement says; None = not available in this format or at its "not available" value."""

    format: str
    temperature: float | None = None  # °C
    humidity: float | None = None  # %RH
    pressure: float | None = None  # Pa
    battery_mv: int | None = None
    tx_power: int | None = None  # dBm
    movement: int | None = None
    sequence: int | None = None
    mac: str | None = None  # 6 bytes (5, C5, E1) or the lowest 3 (6), as AA:BB:...
    extra: dict[str, float | None] = field(default_factory=dict)  # acceleration, PM, CO2, VOC, NOx, light

    @property
    def dedup_key(self) -> tuple[str, int] | None:
        """Formats 6 and E1 of one Ruuvi Air share the low byte of their counter, so one key covers both."""
        if self.sequence is None:
            return None
        return ("air", self.sequence & 0xFF) if self.format in ("6", "E1") else ("tag", self.sequence)


def _u(data: bytes, at: int, n: int) -> int:
    return int.from_bytes(data[at:at + n], "big")


def _s16(data: bytes, at: int) -> int | None:
    v = int.from_bytes(data[at:at + 2], "big", signed=True)
    return None if v == -0x8000 else v


def _uval(data: bytes, at: int, n: int, scale: float = 1.0, offset: float = 0.0) -> float | None:
    v = _u(data, at, n)
    return None if v == (1 << (8 * n)) - 1 else round(v * scale + offset, 6)


def _mac(raw: bytes) -> str | None:
    return None if all(b == 0xFF for b in raw) else ":".join(f"{b:02X}" for b in raw)


def _climate(d: bytes) -> tuple[float | None, float | None, float | None]:
    """Temperature, humidity, pressure: bytes 1-6 in every format."""
    t = _s16(d, 1)
    return (None if t is None else round(t * 0.005, 3), _uval(d, 3, 2, 0.0025), _uval(d, 5, 2, 1.0, 50_000))


def _power(d: bytes, at: int) -> tuple[int | None, int | None]:
    p = _u(d, at, 2)
    volts, tx = p >> 5, p & 0x1F
    return (None if volts == 0x7FF else volts + 1600, None if tx == 0x1F else tx * 2 - 40)


def _air_index(d: bytes, at: int, flags: int, bit: int) -> float | None:
    """VOC / NOx: 9 bits, the lowest in the flags byte; 0x1FF = not available."""
    v = (d[at] << 1) | ((flags >> bit) & 1)
    return None if v == 0x1FF else float(v)


def decode(data: bytes) -> RuuviData:
    """Manufacturer data after the company id; PayloadError for a format or length it cannot read."""
    if not data:
        raise PayloadError("empty Ruuvi data")
    code = data[0]
    if code not in FORMATS:
        what = NOT_DECODED.get(code, f"0x{code:02X}")
        raise PayloadError(f"Ruuvi data format {what} is not decoded")
    size, name = FORMATS[code]
    if len(data) < size:
        raise PayloadError(f"Ruuvi format {name} data is {len(data)} bytes, expected {size}")
    t, h, p = _climate(data)
    out = RuuviData(name, t, h, p)
    if code in (0x05, 0xC5):
        acc = code == 0x05
        base = 13 if acc else 7
        out.battery_mv, out.tx_power = _power(data, base)
        out.movement = None if data[base + 2] == 0xFF else data[base + 2]
        seq = _u(data, base + 3, 2)
        out.sequence = None if seq == 0xFFFF else seq
        out.mac = _mac(data[base + 5:base + 11])
        if acc:
            for i, axis in enumerate("xyz"):
                g = _s16(data, 7 + 2 * i)
                out.extra[f"acceleration_{axis}"] = None if g is None else g / 1000.0
        return out
    air = code == 0x06
    flags = data[16] if air else data[28]
    out.extra["calibrating"] = float(flags & 1)
    if air:
        out.extra |= {"pm2_5": _uval(data, 7, 2, 0.1), "co2": _uval(data, 9, 2),
                      "voc": _air_index(data, 11, flags, 6), "nox": _air_index(data, 12, flags, 7),
                      "luminosity": None if data[13] == 0xFF else round(math.exp(data[13] * LUX_STEP) - 1, 2)}
        out.sequence = data[15]  # no "not available" value: it mirrors the E1 counter's low byte
        out.mac = _mac(data[17:20])
        return out
    for i, size_um in enumerate(("pm1_0", "pm2_5", "pm4_0", "pm10_0")):
        out.extra[size_um] = _uval(data, 7 + 2 * i, 2, 0.1)
    out.extra |= {"co2": _uval(data, 15, 2), "voc": _air_index(data, 17, flags, 6),
                  "nox": _air_index(data, 18, flags, 7), "luminosity": _uval(data, 19, 3, 0.01)}
    seq = _u(data, 25, 3)
    out.sequence = None if seq == 0xFFFFFF else seq
    out.mac = _mac(data[34:40])
    return out
