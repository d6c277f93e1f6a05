"""Built-in notifiers (explicit import list)."""

from drivers.notifiers import console, gsm_modem  # noqa: F401
