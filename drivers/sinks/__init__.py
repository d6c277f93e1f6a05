"""Built-in sinks (explicit import list)."""

from drivers.sinks import influxdb, mqtt_uplink  # noqa: F401
