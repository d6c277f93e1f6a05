"""Built-in sensor drivers (explicit import list)."""

from drivers.sensors import simulated  # noqa: F401
