"""Maps the `type:` key of a config entry to the driver class that handles it."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from daemon.notify import Notifier
from daemon.sinks import Sink
from daemon.sources import SensorDriver

SENSORS: dict[str, type[SensorDriver]] = {}
SINKS: dict[str, type[Sink]] = {}
NOTIFIERS: dict[str, type[Notifier]] = {}

T = TypeVar("T", SensorDriver, Sink, Notifier)


def _check_config(kind: str, cls: type) -> None:
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise RuntimeError(f"driver {kind!r}: {cls.__name__}.Config must be a pydantic model")
    ann = config.model_fields["type"].annotation
    if typing.get_origin(ann) is not typing.Literal or typing.get_args(ann) != (kind,):
        raise RuntimeError(f"driver {kind!r}: {config.__name__}.type must be Literal[{kind!r}]")


def _register(table: dict[str, type[T]], kind: str) -> Callable[[type[T]], type[T]]:
    def add(cls: type[T]) -> type[T]:
        if kind in table:
            raise RuntimeError(f"driver type {kind!r} registered twice")
        _check_config(kind, cls)
        cls.type_key = kind
        table[kind] = cls
        return cls

    return add


def sensor(kind: str) -> Callable[[type[SensorDriver]], type[SensorDriver]]:
    """Class decorator: register a sensor driver under `kind`."""
    return _register(SENSORS, kind)


def sink(kind: str) -> Callable[[type[Sink]], type[Sink]]:
    """Class decorator: register a sink under `kind`."""
    return _register(SINKS, kind)


def notifier(kind: str) -> Callable[[type[Notifier]], type[Notifier]]:
    """Class decorator: register a notifier under `kind`."""
    return _register(NOTIFIERS, kind)
