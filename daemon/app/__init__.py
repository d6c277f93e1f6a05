"""Wiring: the running daemon, the CLI, doctor, systemd, driver discovery. Nothing below imports it."""
