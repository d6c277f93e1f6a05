"""drivers.INDEX: the built-in keys by module, loaded on first look-up; a config loads only what it names."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import drivers
from daemon.ports.registry import Table
from drivers.registry import REGISTRY


def test_index_names_what_the_modules_register() -> None:
    drivers.load_all()
    for table, kinds in drivers.INDEX.items():
        for modules in kinds.values():
            for name in modules:
                importlib.import_module(name)
        mine = getattr(REGISTRY, table)
        registered = {k for k in mine if mine.registered(k)}
        assert set(kinds) <= registered, f"{table}: index keys nothing registers: {set(kinds) - registered}"
        builtin = {k for k in registered if getattr(mine[k], "__module__", "").startswith("drivers.")}
        assert builtin <= set(kinds), f"{table}: registered but missing from drivers.INDEX: {builtin - set(kinds)}"


def test_a_table_loads_on_first_look_up_only() -> None:
    calls: list[str] = []
    t: Table[object] = Table()  # type: ignore[type-var]
    t.defer("a", lambda: calls.append("a") or int)  # type: ignore[arg-type, func-returns-value]
    assert "a" in t and list(t) == ["a"] and len(t) == 1 and calls == []
    assert t["a"] is int and t["a"] is int and calls == ["a"]
    with pytest.raises(KeyError):
        t["b"]
    with pytest.raises(RuntimeError, match="twice"):
        t.defer("a", lambda: int)  # type: ignore[arg-type]


CONFIG = """
site: {id: c1, name: Test}
storage: {journal: JOURNAL}
mqtt: {host: 127.0.0.1}
zones: [{id: z1, name: Z, commodity: mandarin}]
sensors: [{id: s1, zone: z1, type: mqtt, format: json, topic: t/1, values: {temperature: temperature}}]
sinks: [{id: i, type: influxdb1, url: "http://127.0.0.1:8086", database: d}]
notifiers: [{id: out, type: console}]
"""


def test_a_config_imports_only_the_drivers_it_names(tmp_path: object) -> None:
    """An MQTT + InfluxDB 1.x + console box never imports Modbus, serial, GSM, SMS, Apprise or influxdb_client,
    nor pycryptodome (BTHome's decryption, loaded by the MQTT payload formats but only needed for a key)."""
    code = (
        "import sys; from daemon.app.plugins import parse_config;"
        f"cfg = parse_config({CONFIG.replace('JOURNAL', str(tmp_path) + '/j.db')!r});"
        "from daemon.app.runtime import Daemon; Daemon(cfg).journal.close();"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('drivers.', 'pymodbus', 'serial',"
        " 'apprise', 'influxdb_client', 'Crypto', 'httpx')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "drivers.sensors.mqtt" in out and "drivers.sinks.influxdb.v1" in out and "drivers.notifiers.console" in out
    heavy = [m for m in out if m.startswith(("drivers.sensors.modbus_rtu", "drivers.sensors.serial_line",
                                             "drivers.notifiers.gsm_modem", "drivers.notifiers.cloud_sms",
                                             "drivers.notifiers.apprise", "pymodbus", "serial", "apprise",
                                             "influxdb_client", "httpx", "Crypto"))]
    assert heavy == []
