"""Real InfluxDB 1.6.7 for the daemon-level forwarding tests (see tests/peers.py)."""

from tests.peers import influx_db, influxd

__all__ = ["influx_db", "influxd"]
