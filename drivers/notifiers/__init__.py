"""Built-in notifiers (explicit import list)."""

from drivers.notifiers import apprise, console  # noqa: F401
