"""Built-in notifiers (explicit import list)."""

from drivers.notifiers import apprise, cloud_sms, console, gsm_modem  # noqa: F401
