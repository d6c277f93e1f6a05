"""Built-in sinks (explicit import list)."""
