"""Adapters to the outside world: sensors, sinks, notifiers. Each registers by `type:` key."""

from __future__ import annotations

import importlib

from daemon.ports.registry import Registry, Table

_MQTT_FORMATS = ("drivers.sensors.ruuvi", "drivers.sensors.bthome")
"""Payload formats of `mqtt` (daemon.ports.payloads): loaded with it, before its config is read."""

INDEX: dict[str, dict[str, tuple[str, ...]]] = {
    "sensors": {
        "mqtt": (*_MQTT_FORMATS, "drivers.sensors.mqtt"),
        "modbus_rtu": ("drivers.sensors.modbus_rtu",),
        "modbus_tcp": ("drivers.sensors.modbus_tcp",),
        "serial_line": ("drivers.sensors.serial_line",),
        "simulated": ("drivers.sensors.simulated",),
    },
    "sinks": {
        "influxdb1": ("drivers.sinks.influxdb",),
        "influxdb2": ("drivers.sinks.influxdb",),
        "mqtt_uplink": ("drivers.sinks.mqtt_uplink",),
    },
    "notifiers": {
        "console": ("drivers.notifiers.console",),
        "apprise": ("drivers.notifiers.apprise",),
        "aliyun_sms": ("drivers.notifiers.cloud_sms",),
        "tencent_sms": ("drivers.notifiers.cloud_sms",),
        "gsm_modem": ("drivers.notifiers.gsm_modem",),
    },
}
"""Every built-in `type:` key and the modules whose import registers it (tests/drivers/test_index.py
checks this against what the modules really register)."""


def _importer(modules: tuple[str, ...]) -> object:
    def load() -> None:
        for name in modules:
            importlib.import_module(name)  # its decorator puts the class in the registry

    return load


def load_all() -> Registry:
    """The registry of the built-in drivers, each imported on its first look-up by key, so a box
    loads only what its config names (a driver's import costs RSS: pymodbus, pyserial, SMS clients).

    The `coldchain.drivers` entry point (pyproject.toml) names this function: the app finds
    the drivers through it, never by importing them."""
    from drivers.registry import REGISTRY

    for table, kinds in INDEX.items():
        mine: Table[object] = getattr(REGISTRY, table)  # type: ignore[type-var]
        for kind, modules in kinds.items():
            if kind not in mine:
                mine.defer(kind, _importer(modules))  # type: ignore[arg-type]
    return REGISTRY
