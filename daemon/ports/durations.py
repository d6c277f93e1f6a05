"""Durations in config: `90`, `"90s"`, `"10m"`, `"2h"`, `"1d"` all become seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like '15m'; raises ValueError naming the forms."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, '90s', '10m', '2h' or '1d'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _RX.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration; write 90, '90s', '10m', '2h' or '1d'")


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds, written by humans with a unit."""
