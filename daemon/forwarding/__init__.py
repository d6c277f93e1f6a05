"""Store-and-forward of the journal to sinks (InfluxDB, MQTT uplink), one durable cursor each."""
