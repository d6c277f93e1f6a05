"""Built-in sensor drivers (explicit import list)."""

from drivers.sensors import mqtt, simulated  # noqa: F401
