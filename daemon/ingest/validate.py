"""Turn a driver's raw Sample into a Reading in SI units, or a counted sensor fault.

Known error values (DS18B20 85.0 power-on and -127 disconnected, 999 and 327.67
sentinels), NaN, unknown units and values outside the sensor's physical range are never
temperatures: they become FAULT readings that keep the raw value as evidence.

The device's own quantities (battery %, battery volts, RSSI, Zigbee LQI) are checked the same way,
with their own units, ranges and "not available" values (BLE RSSI 127, a battery byte of 255).
"""

from __future__ import annotations

import math

from daemon.ports.model import Flag, Quality, Quantity, Reading, Sample, new_reading
from daemon.ports.sources import SensorBase

PHYSICAL = {Quantity.TEMPERATURE: (-50.0, 70.0), Quantity.HUMIDITY: (0.0, 100.0),
            Quantity.BATTERY: (0.0, 100.0),
            Quantity.BATTERY_VOLTAGE: (0.0, 15.0),  # coin cells, AA packs (Shelly H&T Gen3: 4 x AA), Li-ion, 12 V
            Quantity.SIGNAL: (-127.0, 20.0),  # BLE / Wi-Fi RSSI; the radios' range is about -127 ... +20 dBm
            Quantity.LINK_QUALITY: (0.0, 255.0),
            Quantity.DEFROST: (0.0, 1.0), Quantity.CONTROLLER_ALARM: (0.0, 4294967295.0)}
ERROR_VALUES = {
    Quantity.TEMPERATURE: (85.0, -127.0, 999.0, 327.67, -327.68),
    Quantity.HUMIDITY: (999.0, 327.67, 655.35, 6553.5),
    Quantity.BATTERY: (255.0,),  # a uint8 battery byte at "not available"
    Quantity.BATTERY_VOLTAGE: (),
    Quantity.SIGNAL: (127.0,),  # HCI: RSSI 127 = not available
    Quantity.LINK_QUALITY: (),
    Quantity.DEFROST: (),
    Quantity.CONTROLLER_ALARM: (),
}
FAHRENHEIT_ERRORS = (-196.6,)  # DallasTemperature DEVICE_DISCONNECTED_F
FUTURE_TOLERANCE = 300.0  # a device clock more than this ahead is not believed

_TEMP_UNITS = {"": "C", "c": "C", "°c": "C", "degc": "C", "celsius": "C", "℃": "C",
               "f": "F", "°f": "F", "degf": "F", "fahrenheit": "F", "k": "K", "kelvin": "K"}
_RH_UNITS = {"": "%", "%": "%", "%rh": "%", "rh": "%", "percent": "%", "ratio": "ratio"}
# the device's quantities: unit -> factor to the stored unit
_DEVICE_UNITS: dict[Quantity, dict[str, float]] = {
    Quantity.BATTERY: {"": 1.0, "%": 1.0, "percent": 1.0},
    Quantity.BATTERY_VOLTAGE: {"": 1.0, "v": 1.0, "volt": 1.0, "mv": 0.001},
    Quantity.SIGNAL: {"": 1.0, "dbm": 1.0},
    Quantity.LINK_QUALITY: {"": 1.0, "lqi": 1.0},
    Quantity.DEFROST: {"": 1.0},
    Quantity.CONTROLLER_ALARM: {"": 1.0},
}


class Rejected(Exception):
    """A sample that cannot be placed at all (unknown quantity); counted and dropped."""


def to_si(quantity: Quantity, value: float, unit: str) -> float:
    """Value in °C, %RH, %, V, dBm or LQI; raises ValueError for a unit that does not fit the quantity."""
    u = unit.strip().lower()
    factors = _DEVICE_UNITS.get(quantity)
    if factors is not None:
        if u in factors:
            return value * factors[u]
    elif quantity is Quantity.TEMPERATURE:
        kind = _TEMP_UNITS.get(u)
        if kind == "C":
            return value
        if kind == "F":
            return (value - 32.0) * 5.0 / 9.0
        if kind == "K":
            return value - 273.15
    else:  # humidity
        kind = _RH_UNITS.get(u)
        if kind == "%":
            return value
        if kind == "ratio":
            return value * 100.0
    raise ValueError(f"unknown unit {unit!r} for {quantity.value}")


_QUANTITIES = {q.value: q for q in Quantity}
_GOOD, _FAULT = Quality.GOOD, Quality.FAULT
_STAMPED, _STAMPED_REPLAYED, _DEVICE_TIME = Flag.RECEIVED, Flag.RECEIVED | Flag.REPLAYED, Flag.NONE
"""Module constants: an IntFlag `|` costs ~1 µs in Python 3.11, once per reading on the ingest path."""

_Convert = tuple[float, float, bool]  # SI value = (raw + offset) * scale; whether the unit is Fahrenheit
_CONVERSIONS: dict[tuple[Quantity, str], _Convert | str] = {}
"""(quantity, unit as sent) -> how to convert it, or why it cannot be: worked out once per unit spelling, not
per reading (to_si's strip/lower/dict chain). Bounded: a device may send any unit text."""
_CONVERSIONS_MAX = 512


def _conversion(quantity: Quantity, unit: str) -> _Convert | str:
    """to_si's rule for `unit` as (offset, scale, fahrenheit), or the error text of an unknown unit."""
    conv = _CONVERSIONS.get((quantity, unit))
    if conv is not None:
        return conv
    u = unit.strip().lower()
    fahrenheit = quantity is Quantity.TEMPERATURE and _TEMP_UNITS.get(u) == "F"
    try:
        to_si(quantity, 0.0, unit)
    except ValueError as exc:
        conv = str(exc)
    else:
        conv = (0.0, 1.0, False)  # identity: C, %, and the device units with factor 1
        factors = _DEVICE_UNITS.get(quantity)
        if factors is not None:
            conv = (0.0, factors[u], False)
        elif quantity is Quantity.TEMPERATURE:
            conv = {"C": (0.0, 1.0, False), "F": (-32.0, 5.0 / 9.0, True), "K": (-273.15, 1.0, False)}[_TEMP_UNITS[u]]
        elif _RH_UNITS[u] == "ratio":
            conv = (0.0, 100.0, False)
        assert conv[2] == fahrenheit
    if len(_CONVERSIONS) < _CONVERSIONS_MAX:
        _CONVERSIONS[(quantity, unit)] = conv
    return conv


def _si(raw: float, conv: _Convert) -> float:
    """`to_si` with a worked-out rule; the same arithmetic, so the same float ((v - 32) * 5 / 9 for °F)."""
    offset, scale, fahrenheit = conv
    if fahrenheit:
        return (raw - 32.0) * 5.0 / 9.0
    if offset:
        return raw + offset if scale == 1.0 else (raw + offset) * scale
    return raw if scale == 1.0 else raw * scale


def _fault(site: str, sensor: SensorBase, qty: Quantity, ts: float, flags: Flag, why: str,
           value: float | None = None) -> Reading:
    return new_reading(site, sensor.zone, sensor.id, qty, value, ts, _FAULT, why, None, flags)


def normalize(sample: Sample, sensor: SensorBase, site: str, now: float, receive_note: str = "") -> Reading:
    """The Reading for `sample`: GOOD with an SI value, or FAULT with a note saying why.

    `receive_note` goes on a good reading stamped with `now` (the pipeline says when that clock is unsynchronised)."""
    qty = _QUANTITIES.get(sample.quantity)  # a dict, not Quantity(...): once per reading on the ingest path
    if qty is None:
        raise Rejected(f"sensor {sensor.id}: unknown quantity {sample.quantity!r}")
    ts, note, flags = now, receive_note, _STAMPED
    if sample.ts is not None:
        ts, note, flags = sample.ts, "", _DEVICE_TIME
        if ts > now + FUTURE_TOLERANCE:
            ts, note, flags = now, "device clock ahead; receive time used", _STAMPED
    # stamped on arrival: a replayed one's time says when it came from the broker, not when it was measured
    if sample.replayed and flags is _STAMPED:
        flags = _STAMPED_REPLAYED

    if sample.fault or sample.value is None:
        return _fault(site, sensor, qty, ts, flags, sample.fault or "no value")
    raw = sample.value
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return _fault(site, sensor, qty, ts, flags, f"not a number: {raw!r}")
    raw = float(raw)
    if not math.isfinite(raw):
        return _fault(site, sensor, qty, ts, flags, f"not a number: {raw}")
    conv = _conversion(qty, sample.unit)
    if isinstance(conv, str):
        return _fault(site, sensor, qty, ts, flags, conv, raw)
    value = _si(raw, conv)
    custom = sensor.error_values
    errors = ERROR_VALUES[qty] if custom is None else custom.get(sample.quantity, ())
    for e in errors:
        if abs(value - e) < 1e-6:
            return _fault(site, sensor, qty, ts, flags, f"known error value {raw:g}", raw)
    if conv[2]:
        for e in FAHRENHEIT_ERRORS:
            if abs(raw - e) < 1e-6:
                return _fault(site, sensor, qty, ts, flags, f"known error value {raw:g}", raw)
    rng = sensor.ranges.get(sample.quantity)
    lo, hi = (rng.min, rng.max) if rng else PHYSICAL[qty]
    if not lo <= value <= hi:
        return _fault(site, sensor, qty, ts, flags, f"{value:g} outside physical range {lo:g}..{hi:g}", raw)
    return new_reading(site, sensor.zone, sensor.id, qty, round(value, 4), ts, _GOOD, note, None, flags)
