"""Built-in sensor drivers, each imported on first use by key (drivers.INDEX). `ruuvi` and `bthome` are payload
formats of `mqtt` (daemon.ports.payloads), loaded with it."""
