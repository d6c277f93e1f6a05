"""coldchain-monitor: the application core (no network or hardware code here)."""

__version__ = "0.1.0"
