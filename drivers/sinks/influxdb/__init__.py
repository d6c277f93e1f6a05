"""InfluxDB sinks: `type: influxdb2` (v2 write API via influxdb-client) and `type: influxdb1` (1.x /write).

Both write the same schema (see README.md), made in `points.py`.
"""

from drivers.sinks.influxdb.schema import InfluxDB1Config, InfluxDB2Config, InfluxTls
from drivers.sinks.influxdb.v1 import InfluxDB1Sink
from drivers.sinks.influxdb.v2 import InfluxDB2Sink

__all__ = ["InfluxDB1Config", "InfluxDB1Sink", "InfluxDB2Config", "InfluxDB2Sink", "InfluxTls"]
