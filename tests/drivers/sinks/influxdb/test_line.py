"""line.Point writes what influxdb-client's Point writes, byte for byte, without importing it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from influxdb_client.client.write.point import Point as ClientPoint

from drivers.sinks.influxdb.line import FieldValue, Point

CASES: list[tuple[str, dict[str, str | None], dict[str, FieldValue], int | None]] = [
    ("readings", {"site": "c1", "zone": "room 1", "sensor": "s,1", "commodity": "kiwi=fruit"},
     {"temperature": 0.512}, 1700000000123),
    ("read ings,x", {"b": "2", "a": "1"}, {"t": 5.0, "h": -0.0, "n": 3, "ok": True, "no": False}, 1),
    ("m", {"tail": "ends\\", "empty": "", "none": None, "nl": "a\nb\tc\rd"}, {"s": 'say "hi" \\ ok'}, None),
    ("m", {"k": "v"}, {"nan": float("nan"), "inf": float("inf"), "x": 1e-7, "big": 1e21}, 5),
    ("m", {"k": "v"}, {"nan": float("nan"), "gone": None}, 5),
    ("冷库", {"区": "一号 库"}, {"温度": -18.25, "note": "传感器 85"}, 1700000000000),
    ("m", {"": "x", "y": ""}, {"a=b c": 1.5}, 7),
]


@pytest.mark.parametrize(("name", "tags", "fields", "ts"), CASES)
def test_same_line_as_influxdb_client(name: str, tags: dict[str, str | None], fields: dict[str, FieldValue],
                                      ts: int | None) -> None:
    ours, theirs = Point(name), ClientPoint(name)
    for k, v in tags.items():
        ours.tag(k, v)
        theirs.tag(k, v)
    for fk, fv in fields.items():
        ours.field(fk, fv)
        theirs.field(fk, fv)
    if ts is not None:
        ours.time(ts, "ms")
        theirs.time(ts, "ms")
    assert ours.to_line_protocol() == theirs.to_line_protocol()


def test_the_v1_sink_does_not_import_influxdb_client() -> None:
    """The point of line.py: a box with an InfluxDB 1.x sink never loads influxdb_client (~12 MB RSS)."""
    code = ("import sys; from drivers.sinks.influxdb import points; from daemon.ports.model import Reading, Quantity;"
            "points.encode('s', [Reading('c', 'z', 's', Quantity.TEMPERATURE, 1.0, 1.0)], {});"
            "print(any(m.startswith('influxdb_client') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
