"""Adapters to the outside world: sensors, sinks, notifiers. Each registers by `type:` key."""


def load_all() -> None:
    """Import every built-in driver so each registers itself (explicit import lists)."""
    from drivers import notifiers, sensors, sinks  # noqa: F401
