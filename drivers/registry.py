"""The built-in drivers' registry: each driver module adds itself with a class decorator."""

from __future__ import annotations

from collections.abc import Callable

from daemon.ports.notify import Notifier
from daemon.ports.registry import Registry, add
from daemon.ports.sinks import Sink
from daemon.ports.sources import SensorDriver

REGISTRY = Registry()
SENSORS = REGISTRY.sensors
SINKS = REGISTRY.sinks
NOTIFIERS = REGISTRY.notifiers


def sensor(kind: str) -> Callable[[type[SensorDriver]], type[SensorDriver]]:
    """Class decorator: register a sensor driver under `kind`."""
    return lambda cls: add(SENSORS, kind, cls)


def sink(kind: str) -> Callable[[type[Sink]], type[Sink]]:
    """Class decorator: register a sink under `kind`."""
    return lambda cls: add(SINKS, kind, cls)


def notifier(kind: str) -> Callable[[type[Notifier]], type[Notifier]]:
    """Class decorator: register a notifier under `kind`."""
    return lambda cls: add(NOTIFIERS, kind, cls)
