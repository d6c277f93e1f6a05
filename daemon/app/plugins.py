"""Finding the installed drivers, and loading a config with them.

Drivers are found through the `coldchain.drivers` entry point group (pyproject.toml): each entry
names a function that returns a filled `Registry`. The built-in drivers are one such entry; a
separately installed package can add its own the same way. This is the only place the core
learns which drivers exist.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from pathlib import Path

from daemon.config import loader
from daemon.config.schema import AppConfig
from daemon.ports.registry import Registry

GROUP = "coldchain.drivers"


@functools.cache
def registry() -> Registry:
    """Every installed driver, by `type:` key (loaded once per process)."""
    found = Registry()
    eps = entry_points(group=GROUP)
    if not eps:
        raise RuntimeError(f"no {GROUP} entry point: the package is not installed (pip install -e .)")
    for ep in sorted(eps, key=lambda e: e.name):
        part: Registry = ep.load()()
        for table in ("sensors", "sinks", "notifiers"):
            mine, theirs = getattr(found, table), getattr(part, table)
            for kind in theirs:  # by key: each driver is imported when a config first names it
                mine.defer(kind, functools.partial(theirs.__getitem__, kind))
    return found


def parse_config(text: str, fname: str = "config.yaml", base_dir: Path | None = None) -> AppConfig:
    """`loader.parse_config` with the installed drivers."""
    return loader.parse_config(text, registry(), fname, base_dir)


def load_config(path: str | Path) -> AppConfig:
    """`loader.load_config` with the installed drivers."""
    return loader.load_config(path, registry())
