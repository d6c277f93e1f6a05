"""Built-in sensor drivers (explicit import list). `ruuvi` and `bthome` are payload formats of `mqtt`
(daemon.ports.payloads): imported here so they are registered before any config is read."""

from drivers.sensors import bthome, modbus_rtu, modbus_tcp, mqtt, ruuvi, serial_line, simulated  # noqa: F401
