"""One pure parser per payload format: `parse(topic, payload, sensor, state) -> list[Sample]`.

No I/O and no clock here, so every captured payload is a plain test case. A value that
is null, "nan", "None" or missing becomes a fault Sample naming the topic; a payload
that yields nothing at all (not JSON, wrong shape) raises `BadPayload`, which the
driver counts and logs once per topic and reason.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.ports.model import Sample, new_sample
from daemon.ports.payloads import Message, PayloadError
from drivers.sensors.mqtt.schema import MqttSensorConfig, TimestampPath, unit_of

NO_VALUE = {"", "nan", "-nan", "none", "null", "unknown", "unavailable", "n/a"}


class BadPayload(PayloadError):
    """The payload gave no sample at all; `reason` is short and stable (it keys log-once).
    Registered formats raise its base, PayloadError, which the driver handles the same way."""


@dataclass
class DeviceState:
    """What a parser may remember between messages of one sensor (Shelly's last full status)."""

    site_timezone: str = "UTC"
    status: dict[str, Any] = field(default_factory=dict)
    registered: Any = None  # a registered format's own state (its new_state()), made on the first message


Parser = Callable[[str, bytes, MqttSensorConfig, DeviceState], list[Sample]]


# --------------------------------------------------------------------------- helpers


_JSON = json.JSONDecoder()
"""What `json.loads` ends in for a str without options: called directly, once per message."""


def load_json(payload: bytes) -> Any:
    try:
        return _JSON.decode(payload.decode("utf-8"))  # a leading BOM fails here too (ValueError), as in json.loads
    except (UnicodeDecodeError, ValueError):  # ValueError: also an integer of over 4300 digits
        raise BadPayload("not JSON") from None
    except RecursionError:  # "[[[[..." nested deeper than the interpreter's stack
        raise BadPayload("JSON nested too deep") from None


def text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadPayload("not UTF-8 text") from None


def value_sample(sensor: str, quantity: str, raw: Any, unit: str, topic: str, ts: float | None,
                 what: str | None = None) -> Sample:
    """A Sample for one raw JSON/text value; no-value markers become a fault naming the topic."""
    what = what or quantity
    if raw is None:
        return Sample(sensor, quantity, None, unit, ts, f"{what} is null on {topic}")
    if isinstance(raw, bool):
        return Sample(sensor, quantity, None, unit, ts, f"{what} is not a number ({raw!r}) on {topic}")
    value: float | None = None
    if isinstance(raw, (int, float)):
        try:  # try/except, not contextlib.suppress: this runs for every value of every message
            value = float(raw)
        except OverflowError:  # an integer beyond a float's range
            value = None
    elif isinstance(raw, str):
        s = raw.strip()
        if s.lower() in NO_VALUE:
            return Sample(sensor, quantity, None, unit, ts, f"{what} is {s or 'empty'!r} on {topic}")
        try:
            value = float(s)
        except ValueError:
            value = None
    if value is not None and math.isfinite(value):  # Infinity, 1e400, "inf" are no measurement either
        return new_sample(sensor, quantity, value, unit, ts, None, False)  # Sample(...), per value: model.py
    return Sample(sensor, quantity, None, unit, ts, f"{what} is not a number ({str(raw)[:40]!r}) on {topic}")


def missing(sensor: str, quantity: str, unit: str, topic: str, what: str) -> Sample:
    return Sample(sensor, quantity, None, unit, None, f"{what} missing on {topic}")


def wanted(cfg: MqttSensorConfig, present: Callable[[str], bool]) -> list[str]:
    """Quantities to report: the configured ones, else temperature plus humidity when sent."""
    if cfg.quantities is not None:
        return list(cfg.quantities)
    return ["temperature"] + (["humidity"] if present("humidity") else [])


_PATH_RX = re.compile(r"[^.\[\]]+|\[\d+\]")


@functools.lru_cache(maxsize=1024)
def _parts(path: str) -> tuple[str, ...]:
    """A path's parts, split once: dig() runs for every value of every message."""
    return tuple(_PATH_RX.findall(path))


def dig(data: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path with [n] list items; '' is the whole document."""
    cur = data
    for part in _parts(path):
        if part.startswith("["):
            idx = int(part[1:-1])
            if not isinstance(cur, list) or idx >= len(cur):
                return False, None
            cur = cur[idx]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def to_epoch(raw: Any, fmt: str, tz: str) -> float | None:
    """UTC epoch seconds of a device time; None when it cannot be read (receive time is used)."""
    try:
        if fmt == "epoch_s":
            return _finite(float(raw))
        if fmt == "epoch_ms":
            return _finite(float(raw) / 1000.0)
        if not isinstance(raw, str):
            return None
        # a naive device time is placed in the sensor's zone below
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00")) if fmt == "iso" else datetime.strptime(raw, fmt)  # noqa: DTZ007
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a float (10**400)
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    return dt.timestamp()


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def device_zone(cfg: MqttSensorConfig, state: DeviceState, ts_cfg: TimestampPath | None = None) -> str:
    return (ts_cfg.timezone if ts_cfg else None) or cfg.device_timezone or state.site_timezone


def device_sample(sensor: str, quantity: str, raw: Any, unit: str, ts: float | None = None) -> list[Sample]:
    """A battery / signal Sample when the device sent a number; none otherwise (null, text): a device that
    leaves its battery out is no fault of the room's readings."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return []
    try:
        value = float(raw)  # a JSON integer beyond a float's range raises here, not a number either
    except OverflowError:
        return []
    return [Sample(sensor, quantity, value, unit, ts)] if math.isfinite(value) else []


# --------------------------------------------------------------------------- tasmota


def _tasmota_object(data: dict[str, Any], cfg: MqttSensorConfig) -> tuple[str, dict[str, Any] | None]:
    """(name, the sensor's object or None when it is missing from the message)."""
    if cfg.ds18b20_id:
        want = cfg.ds18b20_id.lower()
        for key, obj in data.items():
            if key.upper().startswith("DS18") and isinstance(obj, dict) and str(obj.get("Id", "")).lower() == want:
                return key, obj
        return f"DS18B20 Id {cfg.ds18b20_id}", None
    if cfg.sensor_key:
        obj = data.get(cfg.sensor_key)
        if obj is not None and not isinstance(obj, dict):
            raise BadPayload(f"{cfg.sensor_key} is not an object")
        return cfg.sensor_key, obj
    found = [k for k, v in data.items() if isinstance(v, dict) and ("Temperature" in v or "Humidity" in v)]
    if len(found) == 1:
        return found[0], data[found[0]]
    if not found:
        return "a temperature sensor", None
    raise BadPayload(f"several sensors ({', '.join(found)}); set sensor_key or ds18b20_id")


def parse_tasmota(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState) -> list[Sample]:
    """`tele/<t>/SENSOR` (or a STATUS10 `StatusSNS` body): one driver key, TempUnit C or F; a BLE sensor's
    `Battery` (%) with it. `tele/<t>/STATE`: the device's Wi-Fi `Signal` (dBm; its `RSSI` is a 0-100 quality)."""
    data = load_json(payload)
    if isinstance(data, dict) and isinstance(data.get("StatusSNS"), dict):
        data = data["StatusSNS"]
    if not isinstance(data, dict):
        raise BadPayload("not a JSON object")
    ts = None
    if cfg.trust_device_time and "Time" in data:
        ts = to_epoch(data["Time"], "iso", device_zone(cfg, state))
    if topic.endswith("/STATE"):
        wifi = data.get("Wifi")
        return device_sample(cfg.id, "signal", wifi.get("Signal"), "dBm", ts) if isinstance(wifi, dict) else []
    name, obj = _tasmota_object(data, cfg)
    return _tasmota_values(cfg, topic, data, name, obj, ts)


def _tasmota_values(cfg: MqttSensorConfig, topic: str, data: dict[str, Any], name: str, obj: dict[str, Any] | None,
                    ts: float | None) -> list[Sample]:
    temp_unit = cfg.unit or str(data.get("TempUnit") or "C")
    keys = {"temperature": "Temperature", "humidity": "Humidity"}
    out = []
    for q in wanted(cfg, lambda q: obj is not None and keys[q] in obj):
        unit = unit_of(q, temp_unit)
        if obj is None:
            out.append(missing(cfg.id, q, unit, topic, name))
        elif keys[q] not in obj:
            out.append(missing(cfg.id, q, unit, topic, f"{name}.{keys[q]}"))
        else:
            out.append(value_sample(cfg.id, q, obj[keys[q]], unit, topic, ts, f"{name}.{keys[q]}"))
    if obj is not None:
        out += device_sample(cfg.id, "battery", obj.get("Battery"), "%", ts)  # BLE sensors through Tasmota
    return out


# --------------------------------------------------------------------------- zigbee2mqtt


def parse_zigbee2mqtt(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState) -> list[Sample]:
    """`<base>/<friendly_name>`: a flat JSON object, temperature always in °C."""
    data = load_json(payload)
    if not isinstance(data, dict):
        raise BadPayload("not a JSON object")
    ts = None
    if cfg.trust_device_time and "last_seen" in data:
        seen = data["last_seen"]
        ts = to_epoch(seen, "epoch_ms" if isinstance(seen, (int, float)) else "iso", device_zone(cfg, state))
    out = []
    for q in wanted(cfg, lambda q: q in data):
        unit = unit_of(q, "C")
        out.append(value_sample(cfg.id, q, data[q], unit, topic, ts) if q in data
                   else missing(cfg.id, q, unit, topic, q))
    # Zigbee2MQTT's own keys: battery %, voltage in mV (Xiaomi/Aqara), linkquality (LQI 0 ... 255)
    for key, q, unit in (("battery", "battery", "%"), ("voltage", "battery_voltage", "mV"),
                         ("linkquality", "link_quality", "")):
        out += device_sample(cfg.id, q, data.get(key), unit, ts)
    return out


# --------------------------------------------------------------------------- shelly gen1


def parse_shelly_gen1(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState) -> list[Sample]:
    """`shellies/<id>/sensor/<quantity>`: one plain value per topic, unit from config."""
    leaf = topic.rsplit("/", 1)[-1]
    value = text(payload)
    temp_unit = cfg.unit or "C"
    if leaf == "error":
        if value in ("0", ""):
            return []
        qs = cfg.quantities or ["temperature", "humidity"]
        return [Sample(cfg.id, q, None, unit_of(q, temp_unit), None, f"sensor error {value} on {topic}") for q in qs]
    if leaf == "battery":  # the H&T's state of charge, %
        with contextlib.suppress(ValueError):
            return device_sample(cfg.id, "battery", float(value), "%")
        return []
    if leaf not in ("temperature", "humidity"):
        return []
    if cfg.quantities is not None and leaf not in cfg.quantities:
        return []
    return [value_sample(cfg.id, leaf, value, unit_of(leaf, temp_unit), topic, None)]


# --------------------------------------------------------------------------- shelly gen2 / gen3


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> None:
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def parse_shelly_gen2(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState) -> list[Sample]:
    """`<id>/events/rpc` JSON-RPC (NotifyStatus merged onto the last NotifyFullStatus) or
    `<id>/status/temperature:N` / `humidity:N` component objects."""
    data = load_json(payload)
    if not isinstance(data, dict):
        raise BadPayload("not a JSON object")
    t_key, h_key = f"temperature:{cfg.component}", f"humidity:{cfg.component}"
    leaf = topic.rsplit("/", 1)[-1]
    ts = None
    if leaf in (t_key, h_key):  # a status topic carries one component
        changes: dict[str, Any] = {leaf: data}
    else:
        method = data.get("method")
        params = data.get("params") if method else data.get("result")
        if not isinstance(params, dict):
            if method is None and "result" not in data:
                raise BadPayload("not a JSON-RPC notification")
            return []  # NotifyEvent without params and the like: nothing measured
        if method == "NotifyFullStatus" or (method is None and "result" in data):
            state.status = {}
        elif method != "NotifyStatus":
            return []  # NotifyEvent: button presses, sleep notices ...
        changes = params
        if cfg.trust_device_time and params.get("ts") is not None:
            ts = to_epoch(params["ts"], "epoch_s", "UTC")
    _merge(state.status, {k: v for k, v in changes.items() if k in (t_key, h_key)})
    device = _shelly_device(cfg, changes, ts)
    if t_key not in changes and h_key not in changes:
        return device  # wifi, cloud, battery ... changed: no new room reading
    status = state.status
    out = []
    for q in wanted(cfg, lambda q: (h_key if q == "humidity" else t_key) in status):
        key = t_key if q == "temperature" else h_key
        comp = status.get(key)
        if not isinstance(comp, dict):
            out.append(missing(cfg.id, q, unit_of(q, "C"), topic, key))
            continue
        errors = comp.get("errors")
        if errors:
            out.append(Sample(cfg.id, q, None, unit_of(q, "C"), ts, f"{key} errors {errors} on {topic}"))
        elif q == "humidity":
            out.append(value_sample(cfg.id, q, comp.get("rh"), "%", topic, ts, f"{key}.rh"))
        elif "tC" in comp or "tF" not in comp:
            out.append(value_sample(cfg.id, q, comp.get("tC"), "C", topic, ts, f"{key}.tC"))
        else:
            out.append(value_sample(cfg.id, q, comp.get("tF"), "F", topic, ts, f"{key}.tF"))
    return out + device


def _shelly_device(cfg: MqttSensorConfig, changes: dict[str, Any], ts: float | None) -> list[Sample]:
    """`devicepower:0.battery` {V, percent} of a battery Shelly (H&T Gen3) and `wifi.rssi` (dBm). On USB
    (`external.present`) the device reports its empty battery slot (0 %, 0.43 V): not a battery to warn about."""
    power, wifi = changes.get("devicepower:0"), changes.get("wifi")
    external = power.get("external") if isinstance(power, dict) else None
    on_usb = isinstance(external, dict) and external.get("present") is True
    battery = power.get("battery") if isinstance(power, dict) and not on_usb else None
    out: list[Sample] = []
    if isinstance(battery, dict):
        out += device_sample(cfg.id, "battery", battery.get("percent"), "%", ts)
        out += device_sample(cfg.id, "battery_voltage", battery.get("V"), "V", ts)
    if isinstance(wifi, dict):
        out += device_sample(cfg.id, "signal", wifi.get("rssi"), "dBm", ts)
    return out


# --------------------------------------------------------------------------- esphome


def parse_esphome(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState) -> list[Sample]:
    """`<node>/sensor/<object_id>/state`: a plain number, or `nan` / `None` when the read failed."""
    parts = topic.split("/")
    object_id = parts[-2] if len(parts) >= 3 else ""
    qs = [q for q, o in cfg.esphome_objects.items() if o == object_id]
    own = [q for q, o in cfg.esphome_device_objects.items() if o == object_id]
    if not qs and not own:
        raise BadPayload(f"no quantity mapped to object id {object_id!r}")
    value = text(payload)
    out = [value_sample(cfg.id, q, value, unit_of(q, cfg.unit or "C"), topic, None) for q in qs]
    for q in own:  # the node's battery / Wi-Fi sensor: a number or nothing, never a fault of the room
        try:
            number: Any = float(value)
        except ValueError:
            number = None
        out += device_sample(cfg.id, q, number, "%" if q == "battery" else "dBm")
    return out


# --------------------------------------------------------------------------- json / homeassistant


def parse_json(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState) -> list[Sample]:
    """Any JSON mapped by config alone: a path per quantity, optional device time, a unit."""
    paths, plan = cfg.value_paths, cfg.json_plan
    whole = plan.whole
    try:
        data = load_json(payload)
    except BadPayload:
        if not whole:
            raise
        data = text(payload)  # a plain-text state such as `unavailable` for a path '' mapping
    if not isinstance(data, (dict, list)) and not whole:
        raise BadPayload("not a JSON object")
    ts = None
    if cfg.trust_device_time and cfg.timestamp is not None:
        found, raw = dig(data, cfg.timestamp.path)
        if found:
            ts = to_epoch(raw, cfg.timestamp.format, device_zone(cfg, state, cfg.timestamp))
    out = []
    for q, unit in plan.units:
        vp = paths[q]
        found, raw = dig(data, vp.path)
        if not found:
            if plan.explicit or q == "temperature":
                out.append(missing(cfg.id, q, unit, topic, vp.path))
            continue
        s = value_sample(cfg.id, q, raw, unit, topic, ts, vp.path or "value")
        if s.value is not None and vp.scale != 1.0:
            s = Sample(s.sensor, s.quantity, s.value * vp.scale, s.unit, s.ts)
        out.append(s)
    return out


def parse_homeassistant(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState) -> list[Sample]:
    """Home Assistant style state: `{"temperature": 23.2, "humidity": 43.7}` (value_json.<key>),
    or a plain number when one quantity is mapped to the path ''."""
    return parse_json(topic, payload, cfg, state)


PARSERS: dict[str, Parser] = {
    "tasmota": parse_tasmota,
    "zigbee2mqtt": parse_zigbee2mqtt,
    "shelly_gen1": parse_shelly_gen1,
    "shelly_gen2": parse_shelly_gen2,
    "esphome": parse_esphome,
    "homeassistant": parse_homeassistant,
    "json": parse_json,
}


def parse(topic: str, payload: bytes, cfg: MqttSensorConfig, state: DeviceState, now: float = 0.0) -> list[Sample]:
    """Dispatch on the sensor's `format`: a built-in parser, else the registered format's decoder
    (`now`, the receive time, is only for its de-duplication windows)."""
    fmt = cfg.registered
    if fmt is None:
        return PARSERS[cfg.format](topic, payload, cfg, state)
    if state.registered is None:
        state.registered = fmt.new_state()
    msg = Message(topic, payload, cfg.id, now, cfg.interval, cfg.quantities)
    return fmt.decode(msg, cfg.format_options, state.registered)
