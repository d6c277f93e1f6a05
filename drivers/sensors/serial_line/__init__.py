"""`type: serial_line`: sensors that print text lines on a serial port (Arduino loggers, ASCII transmitters).

Each poll optionally sends `request`, then reads lines until one matches the sensor's
`pattern` (a value), its `error_pattern` (a device-reported failure) or `line_timeout`
passes (no answer). Lines that match neither, half lines and garbage bytes are skipped.
Formats: PROTOCOLS.md 2.1 (READ -> `16.02C,55.85%`) and 2.2 (the Arduino DHT sketch).
"""

from __future__ import annotations

import math
import re
import time
from importlib import resources
from typing import Any

from daemon.ports.errors import SensorReportedError, SensorTimeout
from drivers.registry import sensor
from drivers.sensors.serial_line.schema import PRESETS, SerialLineConfig
from drivers.sensors.serialbus import SerialBusDriver, Value
from drivers.sensors.serialport import SerialLike

__all__ = ["PRESETS", "SAMPLE_YAML", "SerialLineConfig", "SerialLineDriver", "parse_line", "read_line"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `sensors:` list item showing every option with its default."""

QUIET_END = 0.1
"""Seconds of silence that end a line without CR/LF (the READ protocol sends none)."""

MAX_LINE = 512
"""A longer run of bytes without a line end is cut here: noise must not grow a buffer forever."""

_UNIT_JUNK = re.compile(r"[\s*°\ufffd]")


def read_line(port: SerialLike, deadline: float) -> bytes | None:
    """The next non-empty line (CR, LF or a quiet gap ends it), or None at `deadline` (monotonic)."""
    buf = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf) if buf else None
        port.timeout = min(left, QUIET_END) if buf else left
        byte = port.read(1)
        if not byte:
            if buf:
                return bytes(buf)
            continue
        if byte in b"\r\n":
            if buf:
                return bytes(buf)
            continue
        buf += byte
        if len(buf) >= MAX_LINE:
            return bytes(buf)


def parse_line(cfg: SerialLineConfig, text: str, source: str) -> dict[str, Value] | None:
    """Values from one decoded line; None if it is not this sensor's line.

    Raises SensorReportedError for the device's own error line. A printed `nan` becomes a
    fault for that quantity (the device answered, the measurement failed).
    """
    error_rx = cfg.error_regex
    if error_rx is not None and error_rx.search(text):
        raise SensorReportedError(source, f"device reports {text.strip()!r}")
    m = cfg.regex.search(text)
    if m is None:
        return None
    groups = m.groupdict()
    unit_text = _UNIT_JUNK.sub("", groups.get("unit") or "").upper()
    units = {"temperature": unit_text if unit_text in ("C", "F") else cfg.temperature_unit, "humidity": "%"}
    out: dict[str, Value] = {}
    for q in cfg.quantities:
        raw = groups.get(q)
        if raw is None:
            out[q] = Value(None, fault=f"{source}: no {q} in {text.strip()!r}")
        elif raw.lower() == "nan":
            out[q] = Value(None, fault=f"{source}: device printed nan for {q}")
        else:
            out[q] = _number(raw, units[q], q, source)
    return out


def _number(raw: str, unit: str, quantity: str, source: str) -> Value:
    """A captured group as a value; a loose pattern may capture text or `inf`, which is the device's fault."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        return Value(None, fault=f"{source}: {quantity} {raw[:40]!r} is not a number")
    return Value(value, unit)


def exchange(port: SerialLike, cfg: SerialLineConfig, source: str) -> dict[str, Value]:
    """One poll of one sensor (blocking, on the port's thread)."""
    deadline = time.monotonic() + cfg.line_timeout
    port.reset_input_buffer()  # what waited in the buffer is old: the reading must be fresh
    request = cfg.request_bytes
    if request:
        port.write(request)
    skipped, last = 0, ""
    while True:
        line = read_line(port, deadline)
        if line is None:
            seen = f"; {skipped} other line(s), last {last[:60]!r}" if skipped else ""
            raise SensorTimeout(source, f"no matching line in {cfg.line_timeout:g} s{seen}")
        text = line.decode(cfg.encoding, errors="replace")
        values = parse_line(cfg, text, source)
        if values is not None:
            return values
        skipped, last = skipped + 1, text.strip()


@sensor("serial_line")
class SerialLineDriver(SerialBusDriver[SerialLineConfig]):
    """All line sensors on one serial port, asked (or listened to) in turn by one APScheduler job."""

    Config = SerialLineConfig

    def quantities(self, dev: SerialLineConfig) -> list[str]:
        return dev.quantities

    def ask(self, port: SerialLike, dev: SerialLineConfig) -> dict[str, Value]:
        return exchange(port, dev, self.device_source(dev))

    def describe_device(self, dev: SerialLineConfig) -> dict[str, Any]:
        return {"preset": dev.preset, "request": dev.request, "pattern": dev.pattern}
