"""A real Mosquitto per test (see tests/peers.py)."""

from tests.peers import mosquitto

__all__ = ["mosquitto"]
