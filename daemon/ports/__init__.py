"""The seam between the core and the drivers: the only core modules a driver may import."""
