"""How often the device's own readings (battery, signal, a controller's state) reach the journal: at most
once an hour per sensor and quantity, or at once on a significant change (every change of a state).

A BLE tag advertises its battery with every packet, a Zigbee device with every report: stored at the
climate rate they would double the SD card's writes for a figure that moves over months. The record is
the card's (docs/robustness.md), so the first value, then one an hour, is kept; a step of `STEP` or more
since the last kept value, and any change between good and fault, is kept at once, so a dying battery
or a radio link that breaks shows without waiting for the hour.
"""

from __future__ import annotations

from daemon.ports.model import Quantity, Reading

_DEVICE = frozenset(q for q in Quantity if q.device)
EVERY = 3600.0  # seconds between two kept values of an unchanged quantity
STEP: dict[Quantity, float] = {
    Quantity.BATTERY: 5.0,  # %
    Quantity.BATTERY_VOLTAGE: 0.1,  # V
    Quantity.SIGNAL: 10.0,  # dB
    Quantity.LINK_QUALITY: 50.0,  # LQI
    Quantity.DEFROST: 1.0,  # every start and end of a defrost
    Quantity.CONTROLLER_ALARM: 1.0,  # every change of the alarm bits
}


class DeviceRate:
    """Decides per reading whether a device quantity is stored now; climate readings always are."""

    def __init__(self, every: float = EVERY) -> None:
        self.every = every
        self._kept: dict[tuple[str, str], tuple[float, float | None]] = {}  # (sensor, quantity) -> (ts, value)

    def keep(self, r: Reading) -> bool:
        """True to store `r`: a climate reading, the first of its series, one due, or a significant change."""
        if r.quantity not in _DEVICE:  # a frozenset of members, not the `device` property: once per reading
            return True
        key = (r.sensor, r.quantity.value)
        value = r.value if r.good else None
        last = self._kept.get(key)
        if last is not None:
            ts, before = last
            changed = (before is None) != (value is None) or (
                value is not None and before is not None and abs(value - before) >= STEP[r.quantity])
            if not changed and 0 <= r.ts - ts < self.every:
                return False
        self._kept[key] = (r.ts, value)
        return True
