"""Built-in sinks, each imported on first use by key (drivers.INDEX)."""
