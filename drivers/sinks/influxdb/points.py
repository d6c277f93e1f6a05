"""Readings as InfluxDB line protocol, made by `line.Point` (influxdb-client's escaping, without its import).

One line per reading, timestamp in milliseconds (the journal's own precision), so a resend
writes the same series and timestamp and overwrites rather than duplicates:

    readings,commodity=kiwifruit,sensor=s1,site=c1,zone=room1 temperature=0.512 1700000000123
    sensor_faults,quantity=temperature,sensor=s1,site=c1,zone=room1 note="known error value 85",value=85 ...
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from daemon.ports.errors import SinkError
from daemon.ports.model import Flag, Quantity, Reading
from daemon.ports.sinks import AlarmEvent, Batch
from drivers.sinks.influxdb.line import Point

if TYPE_CHECKING:
    from daemon.ports.sinks import JournalReader, Row

READINGS = "readings"
FAULTS = "sensor_faults"
EVENTS = "alarm_events"
PRECISION = "ms"  # WritePrecision.MS


def to_point(r: Reading, commodity: str | None) -> Point:
    """GOOD readings go to `readings` (field named by quantity); FAULT ones to `sensor_faults`. A replayed
    reading (its time is the broker's replay, not the measurement) carries `replayed=true`."""
    if r.good and r.value is not None:
        p = Point(READINGS)
        p.field(r.quantity.value, float(r.value))
    else:
        p = Point(FAULTS)
        p.tag("quantity", r.quantity.value).field("note", r.note or "fault")
        if r.value is not None and math.isfinite(r.value):
            p.field("value", float(r.value))
    if r.flags & Flag.REPLAYED:  # a field, not a tag: the point stays in its series
        p.field("replayed", True)
    p.tag("site", r.site).tag("zone", r.zone).tag("sensor", r.sensor)
    if commodity:
        p.tag("commodity", commodity)
    p.time(round(r.ts * 1000), PRECISION)
    return p


@functools.lru_cache(maxsize=4096)
def _series_prefix(site: str, zone: str, sensor: str, commodity: str | None, quantity: Quantity) -> str:
    """`readings,<tags> <field>` exactly as Point writes it, made once per series (Point costs ~45 us a line)."""
    probe = Reading(site, zone, sensor, quantity, 1.0, 0.0)
    line: str = to_point(probe, commodity).to_line_protocol()
    suffix = "=1 0"  # the probe's value and time, which Point writes last
    if not line.endswith(suffix):
        raise AssertionError(f"unexpected line protocol from Point: {line!r}")
    return line[: -len(suffix)]


def _line(r: Reading, commodity: str | None) -> str:
    """One reading's line: Point's own output for faults, Point's cached series prefix for good values."""
    if r.good and r.value is not None and math.isfinite(r.value) and not r.flags & Flag.REPLAYED:
        value = str(float(r.value))
        if value.endswith(".0"):  # as Point does: whole floats without ".0" (still floats: no "i")
            value = value[:-2]
        return f"{_series_prefix(r.site, r.zone, r.sensor, commodity, r.quantity)}={value} {round(r.ts * 1000)}"
    line: str = to_point(r, commodity).to_line_protocol()
    return line


def encode(source: str, readings: Sequence[Reading], commodities: Mapping[str, str]) -> bytes:
    """The request body; a reading that makes no valid line is refused like a server would refuse it."""
    lines = []
    for r in readings:
        line = _line(r, commodities.get(r.zone))
        if not line:  # Point drops non-finite fields and empty tags; nothing left to send
            raise SinkError(source, f"reading id {r.id} cannot be written as line protocol", retryable=False)
        lines.append(line)
    return "\n".join(lines).encode("utf-8")


def event_point(e: AlarmEvent, commodity: str | None) -> Point:
    """`alarm_events`: tags place, kind, severity and state (so two states at one ms do not overwrite);
    fields alert_id, who, comment, value, limit."""
    p = Point(EVENTS)
    p.tag("site", e.site).tag("zone", e.zone).tag("kind", e.kind).tag("severity", e.severity)
    p.tag("state", e.state).field("alert_id", e.alert_id).field("who", e.who)
    if e.sensor:
        p.tag("sensor", e.sensor)
    if commodity:
        p.tag("commodity", commodity)
    if e.comment:
        p.field("comment", e.comment)
    for name, v in (("value", e.value), ("limit", e.limit)):
        if v is not None and math.isfinite(v):
            p.field(name, float(v))
    p.time(round(e.ts * 1000), PRECISION)
    return p


def encode_events(events: Sequence[AlarmEvent], commodities: Mapping[str, str]) -> bytes:
    return "\n".join(event_point(e, commodities.get(e.zone)).to_line_protocol() for e in events).encode("utf-8")


def encode_rows(source: str, rows: Sequence[Row], journal: JournalReader, commodities: Mapping[str, str]) -> bytes:
    """`encode()` of journal rows, byte for byte, without a Reading per row: the series prefix is
    looked up once per series id, the text of a value once per distinct value (sensors repeat
    their values; a dict look-up is ~4x cheaper than formatting the float), GOOD finite values
    are formatted here, anything else goes through `encode()`'s own path (`tests/.../test_points.py`
    checks the bytes match)."""
    lines: list[str] = []
    append = lines.append
    prefixes: dict[int, str] = {}
    texts: dict[float, str] = {}
    for row in rows:
        _, ts_ms, sid, value, quality, _note, flags = row
        if quality == 0 and value is not None and not (flags or 0) & Flag.REPLAYED:
            text = texts.get(value) or _value_text(value, texts)
            if text:
                prefix = prefixes.get(sid) or _prefix(sid, journal, commodities, prefixes)
                append(f"{prefix}{text} {ts_ms}")
                continue
        r = journal.row_reading(row)
        line = _line(r, commodities.get(r.zone))
        if not line:
            raise SinkError(source, f"reading id {r.id} cannot be written as line protocol", retryable=False)
        append(line)
    return "\n".join(lines).encode("utf-8")


def encode_values(values: Sequence[tuple[int, int, float | None]], journal: JournalReader,
                  commodities: Mapping[str, str]) -> bytes | None:
    """`encode_rows()` of rows given as (ts_ms, series, GOOD value) (`Journal.read_values_after`), byte for
    byte; None if a row has no GOOD finite value (encode those rows with `encode_rows`, which knows
    the faults' notes and refuses what cannot be written, with its journal id)."""
    lines: list[str] = []
    append = lines.append
    prefixes: dict[int, str] = {}
    texts: dict[float, str] = {}
    for ts_ms, sid, value in values:
        if value is None:
            return None
        text = texts.get(value) or _value_text(value, texts)
        if not text:
            return None
        prefix = prefixes.get(sid) or _prefix(sid, journal, commodities, prefixes)
        append(f"{prefix}{text} {ts_ms}")
    return "\n".join(lines).encode("utf-8")


def _value_text(value: float | None, texts: dict[float, str]) -> str:
    """A GOOD value as Point writes it ("" if none or not finite: Point would drop it), remembered in `texts`."""
    if value is None:
        return ""
    value = float(value)
    if not math.isfinite(value):
        return ""
    text = str(value)
    if text.endswith(".0"):  # as Point does: whole floats without ".0" (still floats: no "i")
        text = text[:-2]
    if value:  # not 0.0: it is equal to -0.0 as a key, but written differently
        texts[value] = text
    return text


def _prefix(sid: int, journal: JournalReader, commodities: Mapping[str, str], prefixes: dict[int, str]) -> str:
    """`readings,<tags> <field>=` of a series id, remembered in `prefixes`."""
    site, zone, sensor, qty = journal.series_key(sid)
    prefix = prefixes[sid] = _series_prefix(site, zone, sensor, commodities.get(zone), Quantity(qty)) + "="
    return prefix


def prepare_lines(source: str, journal: JournalReader, after: int, limit: int,
                  commodities: Mapping[str, str]) -> Batch | None:
    """The next `limit` readings after id `after` as one body of line protocol (the payload), or None if
    there are none. The payload is the SinkError instead when a reading cannot be written: raise it
    at send time, where the forwarder isolates that reading."""
    last, values = journal.read_values_after(after, limit)
    if not values:
        return None
    lines = encode_values(values, journal, commodities)
    if lines is None:  # faults (or no value) in this batch: from the full rows, in journal order
        try:
            lines = encode_rows(source, journal.read_rows_after(after, len(values)), journal, commodities)
        except SinkError as exc:
            return Batch(after, last, len(values), exc)
    return Batch(after, last, len(values), lines)
