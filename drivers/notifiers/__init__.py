"""Built-in notifiers, each imported on first use by key (drivers.INDEX)."""
