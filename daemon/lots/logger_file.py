"""A reefer truck's or insulated box's temperature logger, as a file attached to a lot in transit.

Two forms, both documented in docs/transfers.md:

CSV (UTF-8, `#` starts a comment line, a header row first)::

    time,temperature_c
    2026-12-01T08:00:00+08:00,3.2
    1764547500,3.4

JSON::

    {"logger": "TT-4711", "readings": [{"time": "2026-12-01T08:00:00+08:00", "temperature_c": 3.2}, ...]}

`time` is ISO 8601 (without an offset: the site's time zone) or epoch seconds; times strictly increase;
`temperature_c` is degrees Celsius in [-60, 60]. Every bad row is named `file:line: problem` (JSON:
`file:readings[i]: problem`) and the whole file is refused, so a half-read trip is never taken for the trip.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zoneinfo
from datetime import datetime

MAX_ROWS = 100_000
MAX_PROBLEMS = 20


class LoggerFileError(ValueError):
    """The file is refused; `problems` lists each `where: what` (at most MAX_PROBLEMS, then a count)."""

    def __init__(self, problems: list[str], total: int) -> None:
        more = f"\n... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__("\n".join(problems) + more)
        self.problems = problems
        self.total = total


def _time(raw: object, tz: zoneinfo.ZoneInfo) -> float:
    if isinstance(raw, bool):
        raise ValueError("time must be ISO 8601 or epoch seconds")
    try:
        if isinstance(raw, (int, float)):
            t = float(raw)
        elif isinstance(raw, str) and raw.strip():
            t = _text_time(raw.strip()[:64], tz)
        else:
            raise ValueError("time is missing")
    except OverflowError:  # 1e400 or a year 9999 date-time in a far time zone
        raise ValueError(f"time {str(raw)[:64]!r} is out of range") from None
    if not math.isfinite(t):
        raise ValueError(f"time {str(raw)[:64]!r} is not a finite number")
    if t < 946_684_800:  # before 2000: a logger with an unset clock
        raise ValueError(f"time {raw!r} is before 2000 (logger clock not set?)")
    return t


def _text_time(text: str, tz: zoneinfo.ZoneInfo) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {text!r} is neither ISO 8601 nor epoch seconds") from None
    return (d if d.tzinfo else d.replace(tzinfo=tz)).timestamp()


def _temp(raw: object) -> float:
    if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError("temperature_c is missing")
    try:
        v = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"temperature_c {raw!r} is not a number") from None
    if not math.isfinite(v) or not -60.0 <= v <= 60.0:
        raise ValueError(f"temperature_c {raw!r} is outside -60..60 °C")
    return v


class _Rows:
    """Collects good rows and problems, and checks that times increase."""

    def __init__(self, source: str, tz: zoneinfo.ZoneInfo) -> None:
        self.source, self.tz = source, tz
        self.rows: list[tuple[float, float]] = []
        self.problems: list[str] = []
        self.total = 0

    def add(self, where: str, time: object, temp: object) -> None:
        try:
            row = (_time(time, self.tz), _temp(temp))
            if self.rows and row[0] <= self.rows[-1][0]:
                raise ValueError("time does not increase after the row before")
        except ValueError as exc:
            self.problem(where, str(exc))
            return
        self.rows.append(row)

    def problem(self, where: str, what: str) -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{self.source}:{where}: {what}")

    def result(self) -> list[tuple[float, float]]:
        if not self.rows and not self.total:
            self.problem("1", "no readings")
        if len(self.rows) > MAX_ROWS:
            self.problem("1", f"more than {MAX_ROWS} readings")
        if self.total:
            raise LoggerFileError(self.problems, self.total)
        return self.rows


def parse_csv(text: str, source: str, tz: zoneinfo.ZoneInfo) -> list[tuple[float, float]]:
    """(epoch s, °C) rows of a logger CSV, or LoggerFileError naming each bad line."""
    out = _Rows(source, tz)
    header: list[str] | None = None
    rows = csv.reader(io.StringIO(text))
    n = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # a NUL byte, a field over csv's limit
            out.problem(str(rows.line_num), f"not CSV: {exc}")
            raise LoggerFileError(out.problems, out.total) from None
        n = rows.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            if "time" not in header or "temperature_c" not in header:
                out.problem(str(n), f"the header must name the columns time and temperature_c, not {row!r}")
                raise LoggerFileError(out.problems, out.total)
            continue
        if len(row) != len(header):
            out.problem(str(n), f"{len(row)} fields, the header has {len(header)}")
            continue
        rec = dict(zip(header, row, strict=True))
        out.add(str(n), rec["time"], rec["temperature_c"])
    return out.result()


def parse_json(text: str, source: str, tz: zoneinfo.ZoneInfo) -> tuple[str | None, list[tuple[float, float]]]:
    """(logger id, rows) of a logger JSON file, or LoggerFileError naming each bad entry."""
    out = _Rows(source, tz)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        out.problem(str(exc.lineno), f"not JSON: {exc.msg}")
        raise LoggerFileError(out.problems, out.total) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("readings"), list):
        out.problem("1", 'expected {"logger": "...", "readings": [{"time": ..., "temperature_c": ...}, ...]}')
        raise LoggerFileError(out.problems, out.total)
    logger = doc.get("logger")
    for i, r in enumerate(doc["readings"]):
        if not isinstance(r, dict):
            out.problem(f"readings[{i}]", "expected an object with time and temperature_c")
            continue
        out.add(f"readings[{i}]", r.get("time"), r.get("temperature_c"))
    return (str(logger) if logger is not None else None), out.result()
