"""Config of a sensor that prints text lines on a serial port: regex, optional request, timeouts."""

from __future__ import annotations

import codecs
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from daemon.ports.durations import Duration
from daemon.ports.sources import SensorBase
from drivers.sensors.serial_line.presets import PRESETS, apply_preset
from drivers.sensors.serialport import PortSettings

QUANTITIES = ("temperature", "humidity")


class SerialLineConfig(SensorBase, PortSettings):
    """One sensor read from text lines; sensors sharing a port are read through one connection."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["serial_line"]
    preset: Literal["dht_tester", "xy_md02_read"] | None = Field(
        default=None, description="fill pattern, error_pattern, request and line_timeout; explicit keys win"
    )
    pattern: str = Field(
        description="regex searched in each line; named groups temperature and/or humidity, optional unit (C/F)"
    )
    error_pattern: str | None = Field(
        default=None, description="regex of a line in which the device reports a failed measurement"
    )
    request: str | None = Field(
        default=None, description=r"sent before each read; escapes such as \r \n \x02 allowed; null = just listen"
    )
    line_timeout: Duration = Field(default=5.0, gt=0, le=120, description="how long to wait for a matching line")
    encoding: str = Field(default="utf-8", description="decoding of the lines; bad bytes become U+FFFD")
    temperature_unit: Literal["C", "F"] = Field(default="C", description="unit when the line has no unit group")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, dict) else data

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        rx = _compile(value)
        if not set(QUANTITIES) & set(rx.groupindex):
            raise ValueError("pattern needs a named group (?P<temperature>...) and/or (?P<humidity>...)")
        return value

    @field_validator("error_pattern")
    @classmethod
    def _error_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("request")
    @classmethod
    def _request(cls, value: str | None) -> str | None:
        if value is not None:
            request_bytes(value)
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @property
    def regex(self) -> re.Pattern[str]:
        return _compile(self.pattern)

    @property
    def error_regex(self) -> re.Pattern[str] | None:
        return None if self.error_pattern is None else _compile(self.error_pattern)

    @property
    def quantities(self) -> list[str]:
        """The quantities the pattern captures, in a fixed order."""
        return [q for q in QUANTITIES if q in self.regex.groupindex]

    @property
    def request_bytes(self) -> bytes | None:
        return None if self.request is None else request_bytes(self.request)


def _compile(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None


def request_bytes(text: str) -> bytes:
    """The bytes to send: backslash escapes (\\r, \\n, \\t, \\xNN) decoded, the rest as UTF-8."""
    try:
        return codecs.escape_decode(text.encode("utf-8"))[0]
    except ValueError as exc:
        raise ValueError(f"bad escape in request: {exc}") from None


__all__ = ["PRESETS", "SerialLineConfig", "request_bytes"]
