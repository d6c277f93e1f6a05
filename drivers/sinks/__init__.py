"""Built-in sinks (explicit import list)."""

from drivers.sinks import influxdb  # noqa: F401
