"""Config of one MQTT sensor: which topic, which payload format, how to read values and time."""

from __future__ import annotations

import functools
import typing
import zoneinfo
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daemon.ports import payloads
from daemon.ports.sources import SensorBase

Format = Literal["tasmota", "zigbee2mqtt", "shelly_gen1", "shelly_gen2", "esphome", "homeassistant", "json"]
BUILTIN: tuple[str, ...] = typing.get_args(Format)
QuantityName = Literal["temperature", "humidity"]
DeviceQuantityName = Literal["battery", "signal"]
TempUnit = Literal["C", "F", "K"]

# Formats whose payload carries no time at all: trusting "device time" would mean nothing.
NO_DEVICE_TIME = ("shelly_gen1", "esphome")
# Formats whose payload carries no temperature unit: `unit:` says what the device sends.
UNITLESS = ("shelly_gen1", "esphome", "homeassistant", "json")


def _check_tz(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; e.g. 'Asia/Shanghai' or 'UTC'") from exc
    return value


HUMIDITY_UNIT = "%"


def unit_of(quantity: str, temp_unit: str) -> str:
    return temp_unit if quantity == "temperature" else HUMIDITY_UNIT


@dataclass(frozen=True, slots=True)
class JsonPlan:
    """What parse_json derives from a sensor's config alone, once (`MqttSensorConfig.json_plan`), not per message."""

    whole: bool  # a quantity is mapped to the path '' (the whole payload)
    explicit: bool  # quantities or values were configured: a missing one is a fault, not silence
    units: tuple[tuple[str, str], ...]  # (quantity, unit) in the order they are reported


class ValuePath(BaseModel):
    """Where one quantity sits in a JSON payload (`json`/`homeassistant` formats)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="dotted path, list items as [n]: 'data.sensors[0].temp'; '' = the whole payload")
    unit: str | None = Field(default=None, description="unit of this value; default: the sensor's `unit`")
    scale: float = Field(default=1.0, description="multiply the raw value, e.g. 0.1 for tenths of a degree")


class TimestampPath(BaseModel):
    """Where the device's own time sits in a JSON payload, and how it is written."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="dotted path to the time value")
    format: str = Field(
        default="epoch_s",
        description="epoch_s | epoch_ms | iso (ISO 8601) | a strptime pattern such as '%Y-%m-%d %H:%M:%S'",
    )
    timezone: str | None = Field(
        default=None, description="zone of times written without an offset; default: device_timezone or site"
    )

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in ("epoch_s", "epoch_ms", "iso") and "%" not in v:
            raise ValueError("expected epoch_s, epoch_ms, iso or a strptime pattern containing '%'")
        return v

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))


class MqttSensorConfig(SensorBase):
    """A sensor whose readings arrive on the broker in `mqtt:`; `format` picks the payload parser."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["mqtt"]
    format: str = Field(
        description="payload format of the device: one of the built-in ones, or one a driver registered "
        "(daemon.ports.payloads: ruuvi, bthome ...)"
    )
    topic: str = Field(
        min_length=1,
        description="tasmota: tele/<t>/SENSOR (or just <t>); zigbee2mqtt: <base>/<friendly_name>; "
        "shelly_gen1: shellies/<id>; shelly_gen2: <id> (topic prefix); esphome: <node> (topic prefix); "
        "homeassistant/json: the state topic",
    )
    quantities: list[QuantityName] | None = Field(
        default=None,
        description="what must be in every message (missing = fault); default: temperature, "
        "plus humidity whenever the device sends it",
    )
    unit: TempUnit | None = Field(
        default=None, description="temperature unit the device sends; default C (Tasmota: its TempUnit)"
    )
    sensor_key: str | None = Field(
        default=None, description="tasmota: driver key such as AM2301, BME280, AHT1X-0x38, LYWSD03-52680f"
    )
    ds18b20_id: str | None = Field(default=None, description="tasmota: the DS18B20's `Id` (its index may change)")
    component: int = Field(default=0, ge=0, description="shelly_gen2: component id of temperature:N / humidity:N")
    object_ids: dict[QuantityName, str] = Field(
        default_factory=dict, description="esphome: object id per quantity; default {temperature: temperature}"
    )
    device_object_ids: dict[DeviceQuantityName, str] = Field(
        default_factory=dict,
        description="esphome: object id of the node's own battery (%) and Wi-Fi signal (dBm) sensors, e.g. "
        "{battery: battery_level, signal: wifi_signal}; stored at most hourly, a low battery warns the installer",
    )
    values: dict[QuantityName, str | ValuePath] = Field(
        default_factory=dict,
        description="json/homeassistant: path per quantity; homeassistant default: temperature, humidity",
    )
    timestamp: TimestampPath | None = Field(
        default=None, description="json/homeassistant: where the device time is (used only if trusted)"
    )
    trust_device_time: bool = Field(
        default=False, description="stamp readings with the device's clock instead of the receive time"
    )
    device_timezone: str | None = Field(
        default=None, description="zone of device times without an offset (Tasmota: local time); default: site"
    )
    availability: bool = Field(default=True, description="follow the device's online/offline topic")
    availability_topic: str | None = Field(default=None, description="override the format's availability topic")
    use_retained: bool = Field(
        default=False, description="accept retained data messages (old values of unknown age) as readings"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="options of a registered format (its driver's README lists them)"
    )

    _tz = field_validator("device_timezone")(classmethod(lambda cls, v: _check_tz(v)))

    @field_validator("topic", "availability_topic")
    @classmethod
    def _no_wildcards(cls, v: str | None) -> str | None:
        if v is not None and ("+" in v or "#" in v):
            raise ValueError("a sensor maps one exact topic; wildcards (+, #) are not allowed here")
        return v

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v not in BUILTIN and payloads.lookup(v) is None:
            known = [*BUILTIN, *sorted(payloads.FORMATS)]
            raise ValueError(f"unknown format {v!r}; known: {', '.join(known)}")
        return v

    @model_validator(mode="after")
    def _fits_format(self) -> MqttSensorConfig:
        f = self.format
        if f not in BUILTIN:
            self._registered_options()  # raises for options the format does not take
            for key in ("unit", "trust_device_time"):
                if getattr(self, key):
                    raise ValueError(f"format {f} decodes its own units and time; `{key}` does not apply")
        elif self.options:
            raise ValueError(f"options apply only to registered formats ({', '.join(sorted(payloads.FORMATS))}), "
                             f"not {f}")
        only = {
            "sensor_key": ("tasmota",), "ds18b20_id": ("tasmota",),
            "object_ids": ("esphome",), "device_object_ids": ("esphome",),
            "values": ("json", "homeassistant"), "timestamp": ("json", "homeassistant"),
        }
        for key, formats in only.items():
            if getattr(self, key) and f not in formats:
                raise ValueError(f"{key} applies only to format {' / '.join(formats)}, not {f}")
        if self.sensor_key and self.ds18b20_id:
            raise ValueError("set sensor_key or ds18b20_id, not both")
        if f == "json" and not self.values:
            raise ValueError("format json needs `values`: a path per quantity, e.g. {temperature: data.temp}")
        if self.trust_device_time and f in NO_DEVICE_TIME:
            raise ValueError(f"format {f} sends no device time; trust_device_time cannot apply")
        if self.trust_device_time and f == "json" and self.timestamp is None:
            raise ValueError("trust_device_time needs `timestamp` (where the device time is) for format json")
        if self.unit is not None and f in ("zigbee2mqtt", "shelly_gen2"):
            raise ValueError(f"format {f} always states its unit (°C); `unit` does not apply")
        for q in self.quantities or ():
            if f == "esphome" and q not in self.esphome_objects:
                raise ValueError(f"quantity {q} has no object id in object_ids")
            if f in ("json", "homeassistant") and q not in self.value_paths:
                raise ValueError(f"quantity {q} has no path in values")
        return self

    # --- derived views, used by the parsers and the driver

    @functools.cached_property
    def registered(self) -> payloads.PayloadFormat | None:
        """The registered format behind `format`, or None for a built-in one."""
        return None if self.format in BUILTIN else payloads.lookup(self.format)

    @functools.cached_property
    def format_options(self) -> BaseModel | None:
        """`options`, validated by the registered format's own model."""
        return self._registered_options()

    def _registered_options(self) -> BaseModel | None:
        fmt = self.registered
        if fmt is None:
            return None
        try:
            return fmt.options.model_validate(self.options)
        except ValidationError as exc:
            problems = "; ".join(f"options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"]
                                 else f"options: {e['msg']}" for e in exc.errors())
            raise ValueError(problems) from None

    @functools.cached_property
    def esphome_objects(self) -> dict[str, str]:
        return {str(q): o for q, o in self.object_ids.items()} or {"temperature": "temperature"}

    @functools.cached_property
    def esphome_device_objects(self) -> dict[str, str]:
        return {str(q): o for q, o in self.device_object_ids.items()}

    @functools.cached_property  # read for every message: built once (the dict comprehension was 7 % of ingest)
    def value_paths(self) -> dict[str, ValuePath]:
        raw = dict(self.values) or {"temperature": "temperature", "humidity": "humidity"}
        return {q: ValuePath(path=v) if isinstance(v, str) else v for q, v in raw.items()}

    @functools.cached_property  # read for every message of a JSON format: its quantities and units, built once
    def json_plan(self) -> JsonPlan:
        paths = self.value_paths
        qs = list(self.quantities) if self.quantities is not None else list(paths)
        return JsonPlan(whole=any(vp.path == "" for vp in paths.values()),
                        explicit=self.quantities is not None or bool(self.values),
                        units=tuple((q, paths[q].unit or unit_of(q, self.unit or "C")) for q in qs))
