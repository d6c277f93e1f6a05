"""The table from a config entry's `type:` key to the driver class that serves it.

The drivers fill one (`drivers.registry.REGISTRY`); the core is handed it by the app
(`daemon.app.plugins`), so the core never imports a driver.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

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


class Table(MutableMapping[str, type[T]], Generic[T]):
    """Driver classes by `type:` key, each loaded on its first look-up (`defer`): a box imports the
    drivers its config names, not pymodbus, pyserial or an SMS client it never uses. Listing the
    keys (`in`, iteration, `sorted`) loads nothing; reading the classes (`items()`) loads them."""

    def __init__(self) -> None:
        self._classes: dict[str, type[T]] = {}
        self._loaders: dict[str, Callable[[], type[T] | None]] = {}

    def defer(self, kind: str, load: Callable[[], type[T] | None]) -> None:
        """`load` imports the driver: it returns the class, or None when the import registered it here."""
        if kind in self:
            raise RuntimeError(f"driver type {kind!r} registered twice")
        self._loaders[kind] = load

    def registered(self, kind: str) -> bool:
        """The class is loaded (not just known by key)."""
        return kind in self._classes

    def __getitem__(self, kind: str) -> type[T]:
        cls = self._classes.get(kind)
        if cls is None:
            got = self._loaders[kind]()  # KeyError for an unknown key, as a dict
            cls = self._classes.setdefault(kind, got) if got is not None else self._classes.get(kind)
            if cls is None:
                raise RuntimeError(f"driver type {kind!r}: loading it registered nothing")
        return cls

    def __setitem__(self, kind: str, cls: type[T]) -> None:
        self._classes[kind] = cls

    def __delitem__(self, kind: str) -> None:
        if kind not in self:
            raise KeyError(kind)
        self._classes.pop(kind, None)
        self._loaders.pop(kind, None)

    def __contains__(self, kind: object) -> bool:
        return kind in self._classes or kind in self._loaders

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._loaders), **dict.fromkeys(self._classes)})

    def __len__(self) -> int:
        return len({**self._loaders, **self._classes})


def add(table: MutableMapping[str, type[T]], kind: str, cls: type[T]) -> type[T]:
    """Put `cls` in `table` under `kind`; a key taken twice or a Config that does not match is a bug.
    A key the table knows only as deferred is being loaded now: that is its registration."""
    if (table.registered(kind) if isinstance(table, Table) else kind in table):
        raise RuntimeError(f"driver type {kind!r} registered twice")
    _check_config(kind, cls)
    cls.type_key = kind
    table[kind] = cls
    return cls


@dataclass
class Registry:
    """Sensor, sink and notifier classes by their `type:` key."""

    sensors: Table[SensorDriver] = field(default_factory=Table)
    sinks: Table[Sink] = field(default_factory=Table)
    notifiers: Table[Notifier] = field(default_factory=Table)

    def all(self) -> dict[str, type[SensorDriver] | type[Sink] | type[Notifier]]:
        """Every driver class by key (keys are unique across the three kinds)."""
        return {**self.sensors, **self.sinks, **self.notifiers}
