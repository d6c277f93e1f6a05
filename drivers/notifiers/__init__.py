"""Built-in notifiers (explicit import list)."""

from drivers.notifiers import console  # noqa: F401
