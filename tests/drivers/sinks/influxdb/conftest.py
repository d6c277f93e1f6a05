"""Real InfluxDB 1.6.7 and VictoriaMetrics for the sink tests (see tests/peers.py)."""

from tests.peers import influx_db, influxd, victoria

__all__ = ["influx_db", "influxd", "victoria"]
