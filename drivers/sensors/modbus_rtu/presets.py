"""Shipped register maps for common RS485 temperature/humidity transmitters, and cold-room controller
presets, one YAML file each in `controllers/` (the format an installer copies from the controller's manual).

A preset only fills in defaults: every key written in the sensor's config wins, and a
register entry is merged key by key (`registers: {temperature: {divisor: 100}}` keeps the
preset's register number and signedness). Facts: PROTOCOLS.md section 2.1.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

MAP_KEYS = ("function_code", "registers", "combine_reads")  # what a controller file gives a sensor's config

PRESETS: dict[str, dict[str, Any]] = {
    # XY-MD02 / SHT20 transmitter: input registers (FC04), 0x0001 T and 0x0002 RH, both x10;
    # T is two's complement (0xFF33 = -20.5 C).
    "xy_md02": {
        "function_code": 4,
        "registers": {
            "temperature": {"register": 0x0001, "divisor": 10, "signed": True},
            "humidity": {"register": 0x0002, "divisor": 10},
        },
    },
    # The many "485 温湿度变送器" that use holding registers (FC03), humidity first:
    # 0x0000 RH, 0x0001 T, x10, T signed.
    "fc03_humidity_first": {
        "function_code": 3,
        "registers": {
            "humidity": {"register": 0x0000, "divisor": 10},
            "temperature": {"register": 0x0001, "divisor": 10, "signed": True},
        },
    },
}


def _controllers() -> dict[str, dict[str, Any]]:
    """The controller files: name (file stem) -> the whole document (its map, and name, source, verified ...)."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(resources.files(__package__).joinpath("controllers").iterdir(), key=lambda f: f.name):
        if f.name.endswith(".yaml"):
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
            out[f.name.removesuffix(".yaml")] = doc
    return out


CONTROLLERS: dict[str, dict[str, Any]] = _controllers()
"""Controller presets with their facts: `name`, `source` (the manual the map is taken from), `verified`
(true only when checked against the maker's published manual), `alarm_bits` (bit -> what it means)."""
PRESETS.update({k: {m: doc[m] for m in MAP_KEYS if m in doc} for k, doc in CONTROLLERS.items()})


def apply_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with the named preset's values under it; explicit keys (and register fields) win."""
    name = raw.get("preset")
    if not isinstance(name, str) or name not in PRESETS:  # `preset: []` is reported by the Literal too
        return raw  # no preset, or an unknown one: the Literal on `preset` reports it
    preset = PRESETS[name]
    out = {**{k: v for k, v in preset.items() if k != "registers"}, **raw}
    explicit = raw.get("registers")
    if explicit is None:
        out["registers"] = {q: dict(r) for q, r in preset["registers"].items()}
    elif isinstance(explicit, dict):
        merged = {q: dict(r) for q, r in preset["registers"].items()}
        for q, r in explicit.items():
            if r is None:  # `humidity: null` drops a quantity the preset has
                merged.pop(q, None)
            elif isinstance(r, dict) and q in merged:
                merged[q] = {**merged[q], **r}
            else:
                merged[q] = r
        out["registers"] = merged
    return out
