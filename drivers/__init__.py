"""Adapters to the outside world: sensors, sinks, notifiers. Each registers by `type:` key."""

from __future__ import annotations

from daemon.ports.registry import Registry


def load_all() -> Registry:
    """Import every built-in driver so each registers itself (explicit import lists); the filled registry.

    The `coldchain.drivers` entry point (pyproject.toml) names this function: the app finds
    the drivers through it, never by importing them."""
    from drivers import notifiers, sensors, sinks  # noqa: F401
    from drivers.registry import REGISTRY

    return REGISTRY
