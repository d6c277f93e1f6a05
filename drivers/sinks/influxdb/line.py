"""InfluxDB line protocol, written as influxdb-client's `Point` writes it, without importing that package.

`influxdb_client` pulls in its whole generated API (~12 MB of RSS on the bench box, ~25 MB on a Pi)
even for `Point` alone; the v1 sink needs only these few rules, the v2 sink's client is imported
when it first writes. tests/drivers/sinks/influxdb/test_line.py checks the output against the real
`Point` byte for byte.
"""

from __future__ import annotations

import math

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})

FieldValue = float | int | bool | str | None


def _tag_value(value: str) -> str:
    out = value.translate(_ESCAPE_KEY)
    return out + " " if out.endswith("\\") else out


def _field(key: str, value: FieldValue) -> str | None:
    """`key=value` as Point writes it; None for a value Point drops (None, a non-finite float)."""
    if value is None:
        return None
    k = key.translate(_ESCAPE_KEY)
    if isinstance(value, bool):
        return f"{k}={str(value).lower()}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        s = str(value)
        return f"{k}={s[:-2] if s.endswith('.0') else s}"
    if isinstance(value, int):
        return f"{k}={value}i"
    return f'{k}="{value.translate(_ESCAPE_STRING)}"'


class Point:
    """One point: measurement, tags, fields, an integer time (already in the write precision)."""

    def __init__(self, measurement: str) -> None:
        self._name = measurement
        self._tags: dict[str, str | None] = {}
        self._fields: dict[str, FieldValue] = {}
        self._time: int | None = None

    def tag(self, key: str, value: str | None) -> Point:
        self._tags[key] = value
        return self

    def field(self, key: str, value: FieldValue) -> Point:
        self._fields[key] = value
        return self

    def time(self, ts: int, _precision: str = "ms") -> Point:
        self._time = ts
        return self

    def to_line_protocol(self) -> str:
        """The line; "" when no field is left (as Point)."""
        tags = [f"{k.translate(_ESCAPE_KEY)}={_tag_value(str(v))}" for k, v in sorted(self._tags.items())
                if v is not None]
        tags = [t for t in tags if not t.startswith("=") and not t.endswith("=")]
        fields = [f for k, v in sorted(self._fields.items()) if (f := _field(k, v)) is not None]
        if not fields:
            return ""
        head = self._name.translate(_ESCAPE_MEASUREMENT) + "".join("," + t for t in tags)
        when = "" if self._time is None else f" {self._time}"
        return f"{head} {','.join(fields)}{when}"
