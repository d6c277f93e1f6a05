"""Built-in sensor drivers (explicit import list)."""

from drivers.sensors import modbus_rtu, simulated  # noqa: F401
