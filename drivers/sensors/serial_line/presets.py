"""Shipped line formats for sensors that print ASCII (PROTOCOLS.md 2.1 and 2.2).

A preset fills `pattern`, `error_pattern`, `request` and `line_timeout`; any of them
written in the sensor's config wins.
"""

from __future__ import annotations

from typing import Any

NUMBER = r"-?\d+(?:\.\d+)?"

PRESETS: dict[str, dict[str, Any]] = {
    # adafruit DHT-sensor-library examples/DHTtester, old and new print statements:
    #   "Humidity: 45.00 %\tTemperature: 23.00 *C 73.40 *F\tHeat index: ..."
    #   "Humidity: 45.00%  Temperature: 23.00°C 73.40°F  Heat index: ..."
    # The sketch prints every ~2 s on its own; "nan" when it skips the isnan() check.
    # The degree sign is UTF-8 C2 B0; a Latin-1 sketch sends B0 alone, which decodes to U+FFFD.
    "dht_tester": {
        "pattern": rf"Humidity:\s*(?P<humidity>{NUMBER}|nan)\s*%.*?Temperature:\s*(?P<temperature>{NUMBER}|nan)"
        r"\s*(?P<unit>(?:\*|°|\ufffd)?\s*[CF])\b",
        "error_pattern": r"Failed to read from DHT sensor",
        "request": None,
        "line_timeout": 5.0,
    },
    # The "XY-MD02" revision that is not Modbus: the 4 bytes READ (no CR/LF) -> "16.02C,55.85%".
    "xy_md02_read": {
        "pattern": rf"^(?P<temperature>{NUMBER}|nan)C,(?P<humidity>{NUMBER}|nan)%$",
        "error_pattern": None,
        "request": "READ",
        "line_timeout": 2.0,
    },
}


def apply_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with the named preset's values under it; explicit keys win."""
    name = raw.get("preset")
    if not isinstance(name, str) or name not in PRESETS:  # `preset: []` is reported by the Literal too
        return raw  # no preset, or an unknown one: the Literal on `preset` reports it
    return {**PRESETS[name], **raw}
