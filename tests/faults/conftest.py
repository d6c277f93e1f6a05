"""Real peers for the fault suite, reused from the driver and daemon tests."""

from tests.drivers.notifiers.gsm_modem.conftest import ptys
from tests.drivers.sensors.conftest import pty_pair
from tests.drivers.sensors.mqtt.conftest import broker, restartable_broker
from tests.peers import influx_db, influxd

__all__ = ["broker", "influx_db", "influxd", "pty_pair", "ptys", "restartable_broker"]
