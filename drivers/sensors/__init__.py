"""Built-in sensor drivers (explicit import list)."""

from drivers.sensors import modbus_rtu, mqtt, serial_line, simulated  # noqa: F401
