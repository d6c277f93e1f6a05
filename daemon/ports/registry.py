"""The table from a config entry's `type:` key to the driver class that serves it.

The drivers fill one (`drivers.registry.REGISTRY`); the core is handed it by the app
(`daemon.app.plugins`), so the core never imports a driver.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

from daemon.ports.notify import Notifier
from daemon.ports.sinks import Sink
from daemon.ports.sources import SensorDriver

T = TypeVar("T", SensorDriver, Sink, Notifier)


def _check_config(kind: str, cls: type) -> None:
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise RuntimeError(f"driver {kind!r}: {cls.__name__}.Config must be a pydantic model")
    ann = config.model_fields["type"].annotation
    if typing.get_origin(ann) is not typing.Literal or typing.get_args(ann) != (kind,):
        raise RuntimeError(f"driver {kind!r}: {config.__name__}.type must be Literal[{kind!r}]")


def add(table: dict[str, type[T]], kind: str, cls: type[T]) -> type[T]:
    """Put `cls` in `table` under `kind`; a key taken twice or a Config that does not match is a bug."""
    if kind in table:
        raise RuntimeError(f"driver type {kind!r} registered twice")
    _check_config(kind, cls)
    cls.type_key = kind
    table[kind] = cls
    return cls


@dataclass
class Registry:
    """Sensor, sink and notifier classes by their `type:` key."""

    sensors: dict[str, type[SensorDriver]] = field(default_factory=dict)
    sinks: dict[str, type[Sink]] = field(default_factory=dict)
    notifiers: dict[str, type[Notifier]] = field(default_factory=dict)

    def all(self) -> dict[str, type[SensorDriver] | type[Sink] | type[Notifier]]:
        """Every driver class by key (keys are unique across the three kinds)."""
        return {**self.sensors, **self.sinks, **self.notifiers}
